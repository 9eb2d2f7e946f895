import { closeSync, fstatSync, mkdtempSync, openSync, readFileSync, rmSync, writeSync } from "node:fs";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { afterEach, beforeEach, describe, expect, it } from "vitest";
import { FALLOC_FL_KEEP_SIZE, FALLOC_FL_PUNCH_HOLE, fallocate } from "./fallocate.js";

let dir: string;
beforeEach(() => {
  dir = mkdtempSync(join(tmpdir(), "unionfs-fallocate-"));
});
afterEach(() => {
  rmSync(dir, { recursive: true, force: true });
});

describe("fallocate", () => {
  it("preallocates, and punches a hole that reads back as zeros", () => {
    const path = join(dir, "f");
    const fd = openSync(path, "w+");
    try {
      fallocate(fd, 0, 0, 1 << 20);
      expect(fstatSync(fd).size).toBe(1 << 20);
      writeSync(fd, Buffer.alloc(8192, 7), 0, 8192, 0);
      fallocate(fd, FALLOC_FL_PUNCH_HOLE | FALLOC_FL_KEEP_SIZE, 0, 4096);
      expect(fstatSync(fd).size).toBe(1 << 20);
    } finally {
      closeSync(fd);
    }
    const data = readFileSync(path);
    expect([data[0], data[4095], data[4096]]).toEqual([0, 0, 7]);
  });

  it("throws an errno-shaped error", () => {
    expect(() => fallocate(9999, 0, 0, 1)).toThrow(expect.objectContaining({ code: "EBADF", syscall: "fallocate" }));
  });
});
