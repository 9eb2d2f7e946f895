import { describe, expect, it } from "vitest";
import { xinoMapping } from "./xino.js";

// Expected numbers are what kernel 6.18's overlayfs reported with xino=on on throwaway mounts.
describe("xinoMapping", () => {
  it("maps nothing when every layer shares one filesystem", () => {
    expect(xinoMapping([5n, 5n], 5n).bits).toBe(0);
    expect(xinoMapping([5n, 5n], null).lower(1, 7n)).toBe(7n);
  });

  it("one lower filesystem beside the upper's: 2 bits, fsid 1 in the top bit", () => {
    const m = xinoMapping([10n], 11n);
    expect(m.bits).toBe(2);
    expect(m.lower(0, 3n)).toBe(9223372036854775811n);
  });

  it("a lower-only stack keeps fsid 0 free: three lower filesystems take 3 bits", () => {
    const m = xinoMapping([20n, 21n, 22n], null);
    expect(m.bits).toBe(3);
    expect(m.fsids).toEqual([1, 2, 3]);
    expect(m.lower(0, 2146599n)).toBe(4611686018429534503n);
    expect(m.lower(1, 4n)).toBe(9223372036854775812n);
    expect(m.lower(2, 23n)).toBe(13835058055282163735n);
  });

  it("numbers fsids by first appearance, and gives a lower on the upper's filesystem fsid 0", () => {
    expect(xinoMapping([2n, 3n, 2n, 1n], 1n).fsids).toEqual([1, 2, 1, 0]);
    expect(xinoMapping([2n, 3n, 2n], null).fsids).toEqual([1, 2, 1]);
  });

  it("refuses a number that already uses the fsid bits", () => {
    expect(() => xinoMapping([10n], 11n).lower(0, 1n << 62n)).toThrow(/xino bits/);
  });
});
