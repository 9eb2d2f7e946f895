import { describe, expect, it } from "vitest";
import { cpuQuotaUs, formatBytes, hasLimits, parseCpus, parseMemory, parsePids } from "./limits.js";

describe("limits", () => {
  it("parses memory sizes in binary units, docker style", () => {
    expect(parseMemory("64m")).toBe(64 * 1024 ** 2);
    expect(parseMemory("64M")).toBe(64 * 1024 ** 2);
    expect(parseMemory("64mb")).toBe(64 * 1024 ** 2);
    expect(parseMemory("1g")).toBe(1024 ** 3);
    expect(parseMemory("1.5g")).toBe(1.5 * 1024 ** 3);
    expect(parseMemory("8388608")).toBe(8 * 1024 ** 2);
    expect(() => parseMemory("64x")).toThrow(/size like 64m/);
    expect(() => parseMemory("5m")).toThrow(/at least 6m/);
  });

  it("turns CPUs into a CFS quota per 100 ms period", () => {
    expect(cpuQuotaUs(parseCpus("0.5"))).toBe(50_000);
    expect(cpuQuotaUs(parseCpus("2"))).toBe(200_000);
    expect(cpuQuotaUs(parseCpus(".25"))).toBe(25_000);
    expect(cpuQuotaUs(parseCpus("0.01"))).toBe(1_000);
    expect(() => parseCpus("0.001")).toThrow(/at least 0.01/);
    expect(() => parseCpus("1e3")).toThrow(/--cpus/);
    expect(() => parseCpus("half")).toThrow(/--cpus/);
  });

  it("takes a positive pids count", () => {
    expect(parsePids("32")).toBe(32);
    expect(() => parsePids("-1")).toThrow(/positive/);
    expect(() => parsePids("3.5")).toThrow(/positive/);
  });

  it("says whether any limit is set, and formats sizes for messages", () => {
    expect(hasLimits({})).toBe(false);
    expect(hasLimits({ pids: 1 })).toBe(true);
    expect(formatBytes(64 * 1024 ** 2)).toBe("64m");
    expect(formatBytes(2 * 1024 ** 3)).toBe("2g");
    expect(formatBytes(1000)).toBe("1000b");
  });
});
