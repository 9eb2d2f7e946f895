import { existsSync, lstatSync, mkdtempSync, readFileSync, rmSync, writeFileSync } from "node:fs";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { afterEach, beforeEach, describe, expect, it } from "vitest";
import { AT_FDCWD } from "./libc.js";
import { major, minor } from "./mknod.js";
import { RENAME_EXCHANGE, RENAME_NOREPLACE, RENAME_WHITEOUT, renameat2 } from "./rename.js";

const isRoot = process.getuid?.() === 0;
let dir: string;
beforeEach(() => {
  dir = mkdtempSync(join(tmpdir(), "unionfs-rename-"));
  writeFileSync(join(dir, "a"), "A");
  writeFileSync(join(dir, "b"), "B");
});
afterEach(() => rmSync(dir, { recursive: true, force: true }));

describe("renameat2", () => {
  it("renames with flags 0", () => {
    renameat2(AT_FDCWD, join(dir, "a"), AT_FDCWD, join(dir, "c"), 0);
    expect(readFileSync(join(dir, "c"), "utf8")).toBe("A");
    expect(existsSync(join(dir, "a"))).toBe(false);
  });

  it("RENAME_NOREPLACE fails with EEXIST", () => {
    expect(() => renameat2(AT_FDCWD, join(dir, "a"), AT_FDCWD, join(dir, "b"), RENAME_NOREPLACE)).toThrow(
      expect.objectContaining({ code: "EEXIST", syscall: "renameat2" }),
    );
    expect(readFileSync(join(dir, "b"), "utf8")).toBe("B");
  });

  it("RENAME_EXCHANGE swaps two entries", () => {
    renameat2(AT_FDCWD, join(dir, "a"), AT_FDCWD, join(dir, "b"), RENAME_EXCHANGE);
    expect(readFileSync(join(dir, "a"), "utf8")).toBe("B");
    expect(readFileSync(join(dir, "b"), "utf8")).toBe("A");
  });

  it.skipIf(!isRoot)("RENAME_WHITEOUT leaves a char device 0/0 at the source (root)", () => {
    renameat2(AT_FDCWD, join(dir, "a"), AT_FDCWD, join(dir, "c"), RENAME_WHITEOUT);
    const st = lstatSync(join(dir, "a"));
    expect(st.isCharacterDevice()).toBe(true);
    expect([major(st.rdev), minor(st.rdev)]).toEqual([0, 0]);
    expect(readFileSync(join(dir, "c"), "utf8")).toBe("A");
  });
});
