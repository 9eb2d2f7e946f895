import { closeSync, ftruncateSync, mkdtempSync, openSync, readFileSync, rmSync, statSync, writeSync } from "node:fs";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { afterEach, beforeEach, describe, expect, it } from "vitest";
import { copyData } from "./copy-data.js";

const MiB = 1024 * 1024;
let dir: string;
beforeEach(() => {
  dir = mkdtempSync(join(tmpdir(), "unionfs-copy-data-"));
});
afterEach(() => {
  rmSync(dir, { recursive: true, force: true });
});

/** Copies `src` to a new `dest` with copyData, as copy-up does (size set by the caller). */
async function copy(src: string, dest: string, writeBack = true): Promise<void> {
  const size = statSync(src).size;
  const from = openSync(src, "r");
  const to = openSync(dest, "wx");
  try {
    await copyData(from, to, size, writeBack);
    ftruncateSync(to, size);
  } finally {
    closeSync(from);
    closeSync(to);
  }
}

describe("copyData", () => {
  it.each([
    ["written back while copying", true],
    ["left to the page cache (volatile)", false],
  ])(
    "copies data segments larger than a slice, across slice boundaries, and keeps the holes: %s",
    async (_, writeBack) => {
      const src = join(dir, "src");
      const fd = openSync(src, "w");
      // 40 MiB of data from 1 MiB (three 16 MiB slices, the last one short), a hole, 3 MiB at 60 MiB
      const pattern = Buffer.alloc(MiB);
      for (let i = 0; i < pattern.length; i++) pattern[i] = (i * 131) % 251;
      for (let m = 1; m <= 40; m++) writeSync(fd, pattern, 0, MiB, m * MiB);
      for (let m = 60; m < 63; m++) writeSync(fd, pattern, 0, MiB, m * MiB);
      ftruncateSync(fd, 80 * MiB);
      closeSync(fd);

      const dest = join(dir, "dest");
      await copy(src, dest, writeBack);
      expect(readFileSync(dest).equals(readFileSync(src))).toBe(true);
      const blocks = statSync(dest).blocks * 512;
      expect(blocks).toBeGreaterThanOrEqual(43 * MiB);
      expect(blocks).toBeLessThan(46 * MiB); // the 37 MiB of holes stayed holes (a reflink shares, same count)
    },
  );

  it("leaves the event loop free while a volatile copy runs (on a worker thread)", async () => {
    const src = join(dir, "src");
    const fd = openSync(src, "w");
    const chunk = Buffer.alloc(MiB, 7);
    for (let m = 0; m < 64; m++) writeSync(fd, chunk, 0, MiB, m * MiB);
    closeSync(fd);
    let turns = 0;
    let copying = true;
    const turn = () => {
      if (!copying) return;
      turns++;
      setImmediate(turn);
    };
    const from = openSync(src, "r");
    const to = openSync(join(dir, "dest"), "wx");
    setImmediate(turn);
    try {
      await copyData(from, to, 64 * MiB, false);
    } finally {
      copying = false;
      closeSync(from);
      closeSync(to);
    }
    // a copy on this thread would have run through before the first turn
    expect(turns).toBeGreaterThan(0);
    expect(readFileSync(join(dir, "dest")).equals(readFileSync(src))).toBe(true);
  });

  it("copies an empty file as empty", async () => {
    const src = join(dir, "empty");
    closeSync(openSync(src, "w"));
    await copy(src, join(dir, "dest"));
    expect(statSync(join(dir, "dest")).size).toBe(0);
  });
});
