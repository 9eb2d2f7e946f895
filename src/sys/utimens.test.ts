import { lstatSync, mkdtempSync, rmSync, symlinkSync, writeFileSync } from "node:fs";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { afterAll, afterEach, beforeAll, describe, expect, it } from "vitest";
import { lutimens } from "./utimens.js";

describe("lutimens", () => {
  let dir = "";
  beforeAll(() => {
    dir = mkdtempSync(join(tmpdir(), "unionfs-utimens-"));
  });
  afterAll(() => rmSync(dir, { recursive: true, force: true }));
  afterEach(() => rmSync(join(dir, "f"), { force: true }));

  it("sets nanosecond times exactly, where Node's utimes loses a microsecond", () => {
    const path = join(dir, "f");
    writeFileSync(path, "");
    lutimens(path, 1039822573066000000n, 1451978095469123456n);
    const st = lstatSync(path, { bigint: true });
    expect([st.atimeNs, st.mtimeNs]).toEqual([1039822573066000000n, 1451978095469123456n]);
  });

  it("leaves a time alone with omit and sets the current time with now", () => {
    const path = join(dir, "f");
    writeFileSync(path, "");
    lutimens(path, 1_000_000_000_000_000_000n, 1_000_000_000_000_000_000n);
    const before = BigInt(Date.now()) * 1_000_000n;
    lutimens(path, "omit", "now");
    const st = lstatSync(path, { bigint: true });
    expect(st.atimeNs).toBe(1_000_000_000_000_000_000n);
    expect(st.mtimeNs >= before - 10_000_000n).toBe(true);
  });

  it("changes a symlink itself, not its target", () => {
    const target = join(dir, "f");
    writeFileSync(target, "");
    const link = join(dir, "l");
    symlinkSync("f", link);
    lutimens(link, 5_000_000_000n, 7_000_000_000n);
    expect(lstatSync(link, { bigint: true }).mtimeNs).toBe(7_000_000_000n);
    expect(lstatSync(target, { bigint: true }).mtimeNs).not.toBe(7_000_000_000n);
    rmSync(link);
  });
});
