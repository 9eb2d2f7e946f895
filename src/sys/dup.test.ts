import { closeSync, mkdtempSync, openSync, readSync, rmSync, writeFileSync } from "node:fs";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { afterEach, beforeEach, describe, expect, it } from "vitest";
import { replaceFd } from "./dup.js";

let dir: string;
beforeEach(() => {
  dir = mkdtempSync(join(tmpdir(), "unionfs-dup-"));
});
afterEach(() => {
  rmSync(dir, { recursive: true, force: true });
});

describe("replaceFd", () => {
  it("puts another open file under an fd's number; the source fd stays open", () => {
    writeFileSync(join(dir, "a"), "aaa");
    writeFileSync(join(dir, "b"), "bbb");
    const target = openSync(join(dir, "a"), "r");
    const source = openSync(join(dir, "b"), "r");
    try {
      replaceFd(source, target);
      const buf = Buffer.alloc(3);
      readSync(target, buf, 0, 3, 0);
      expect(buf.toString()).toBe("bbb");
      readSync(source, buf, 0, 3, 0);
      expect(buf.toString()).toBe("bbb");
    } finally {
      closeSync(source);
      closeSync(target);
    }
  });

  it("refuses a source that is not open (EBADF)", () => {
    const target = openSync(join(dir, "t"), "w");
    try {
      expect(() => replaceFd(1 << 20, target)).toThrow(expect.objectContaining({ code: "EBADF" }));
    } finally {
      closeSync(target);
    }
  });
});
