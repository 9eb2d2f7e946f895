import { constants, lstatSync, mkdtempSync, rmSync } from "node:fs";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { afterEach, beforeEach, describe, expect, it } from "vitest";
import { major, makedev, minor, mknod } from "./mknod.js";

const isRoot = process.getuid?.() === 0;
let dir: string;
beforeEach(() => {
  dir = mkdtempSync(join(tmpdir(), "unionfs-mknod-"));
});
afterEach(() => rmSync(dir, { recursive: true, force: true }));

describe("makedev / major / minor", () => {
  it.each([
    [0, 0, 0],
    [1, 3, 0x103],
    [8, 17, 0x811],
    [259, 0x12345, 0x12310345],
    [0x1234, 0xabcdef, 0x100abcd234ef],
  ])("(%i, %i) encodes as glibc does", (ma, mi, dev) => {
    expect(makedev(ma, mi)).toBe(dev);
    expect(major(dev)).toBe(ma);
    expect(minor(dev)).toBe(mi);
  });

  it("round-trips large majors", () => {
    const dev = makedev(0x1234, 0xabcdef);
    expect([major(dev), minor(dev)]).toEqual([0x1234, 0xabcdef]);
  });
});

describe("mknod", () => {
  it("creates a fifo", () => {
    const p = join(dir, "fifo");
    mknod(p, constants.S_IFIFO | 0o640, 0);
    const st = lstatSync(p);
    expect(st.isFIFO()).toBe(true);
    expect(st.mode & 0o777 & ~0o640).toBe(0); // the umask may only clear bits
  });

  it("throws EEXIST for an existing name", () => {
    mknod(join(dir, "x"), constants.S_IFIFO | 0o600, 0);
    expect(() => mknod(join(dir, "x"), constants.S_IFIFO | 0o600, 0)).toThrow(
      expect.objectContaining({ code: "EEXIST", syscall: "mknod" }),
    );
  });

  it.skipIf(!isRoot)("creates a char device 0/0, an overlay whiteout (root)", () => {
    const p = join(dir, "wh");
    mknod(p, constants.S_IFCHR | 0o000, makedev(0, 0));
    const st = lstatSync(p);
    expect(st.isCharacterDevice()).toBe(true);
    expect(st.rdev).toBe(0);
  });

  it.skipIf(!isRoot)("stores the device number it is given (root)", () => {
    const p = join(dir, "null");
    mknod(p, constants.S_IFCHR | 0o666, makedev(1, 3));
    const st = lstatSync(p);
    expect([major(st.rdev), minor(st.rdev)]).toEqual([1, 3]);
  });
});
