import { closeSync, ftruncateSync, mkdtempSync, openSync, readFileSync, rmSync, statSync, writeSync } from "node:fs";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { afterEach, beforeEach, describe, expect, it } from "vitest";
import { FsError } from "../errors.js";
import { DataCopier, RANGE_METHODS, type RangeMethod } from "./copy-data.js";

const MiB = 1024 * 1024;
/** a tmpfs every Linux machine has, writable without root: another filesystem than tmpdir()'s */
const SHM = "/dev/shm";
let dir: string;
let otherFs: string;
beforeEach(() => {
  dir = mkdtempSync(join(tmpdir(), "unionfs-copy-data-"));
  otherFs = mkdtempSync(join(SHM, "unionfs-copy-data-"));
});
afterEach(() => {
  rmSync(dir, { recursive: true, force: true });
  rmSync(otherFs, { recursive: true, force: true });
});

/** Copies `src` to a new `dest` as copy-up does (the size set by the caller). */
async function copy(src: string, dest: string, writeBack = true, copier = new DataCopier(writeBack)): Promise<void> {
  const size = statSync(src).size;
  const from = openSync(src, "r");
  const to = openSync(dest, "wx");
  try {
    await copier.copy({ fd: from, dev: BigInt(statSync(src).dev) }, { fd: to, dev: BigInt(statSync(dest).dev) }, size);
    ftruncateSync(to, size);
  } finally {
    closeSync(from);
    closeSync(to);
  }
}

/** 40 MiB of data from 1 MiB (three 16 MiB slices, the last one short), a hole, 3 MiB at 60 MiB, 80 MiB in all */
function writeSparse(path: string): void {
  const fd = openSync(path, "w");
  const pattern = Buffer.alloc(MiB);
  for (let i = 0; i < pattern.length; i++) pattern[i] = (i * 131) % 251;
  for (let m = 1; m <= 40; m++) writeSync(fd, pattern, 0, MiB, m * MiB);
  for (let m = 60; m < 63; m++) writeSync(fd, pattern, 0, MiB, m * MiB);
  ftruncateSync(fd, 80 * MiB);
  closeSync(fd);
}

function expectSparseCopy(src: string, dest: string): void {
  expect(readFileSync(dest).equals(readFileSync(src))).toBe(true);
  const blocks = statSync(dest).blocks * 512;
  expect(blocks).toBeGreaterThanOrEqual(43 * MiB);
  expect(blocks).toBeLessThan(46 * MiB); // the 37 MiB of holes stayed holes (a reflink shares, same count)
}

/** A method that refuses every copy with `code`, counting how often it was asked. */
function refusing(code: string): RangeMethod & { calls: number } {
  const method = {
    name: `refuses with ${code}`,
    calls: 0,
    sync(): number {
      method.calls++;
      throw new FsError(code, "test");
    },
    async async(): Promise<number> {
      return method.sync();
    },
  };
  return method;
}

describe("DataCopier", () => {
  it.each([
    ["written back while copying", true],
    ["left to the page cache (volatile)", false],
  ])(
    "copies data segments larger than a slice, across slice boundaries, and keeps the holes: %s",
    async (_, writeBack) => {
      const src = join(dir, "src");
      writeSparse(src);
      const dest = join(dir, "dest");
      await copy(src, dest, writeBack);
      expectSparseCopy(src, dest);
    },
  );

  it.each([
    ["written back while copying", true],
    ["left to the page cache (volatile)", false],
  ])("copies to another filesystem, holes kept, and remembers the method that crosses: %s", async (_, writeBack) => {
    const src = join(dir, "src");
    writeSparse(src);
    const copier = new DataCopier(writeBack);
    await copy(src, join(otherFs, "dest"), writeBack, copier);
    expectSparseCopy(src, join(otherFs, "dest"));
    // copy_file_range and FICLONE refuse to cross from this filesystem to tmpfs (EXDEV)
    const [srcDev, destDev] = [BigInt(statSync(src).dev), BigInt(statSync(otherFs).dev)];
    expect(copier.methodFor(srcDev, destDev)).toBe("sendfile");
    // the way back is a pair of its own
    expect(copier.methodFor(destDev, srcDev)).toBe("reflink");
  });

  it.each([
    ["written back while copying", true],
    ["left to the page cache (volatile)", false],
  ])("falls back to read/write on each refusal, once per pair of devices: %s", async (_, writeBack) => {
    const readWrite = RANGE_METHODS.find((m) => m.name === "read/write");
    if (readWrite === undefined) throw new Error("no read/write method");
    const cross = refusing("EXDEV");
    const unsupported = refusing("EOPNOTSUPP");
    const copier = new DataCopier(writeBack, [cross, unsupported, readWrite]);
    const src = join(dir, "src");
    writeSparse(src);
    await copy(src, join(otherFs, "dest"), writeBack, copier);
    expectSparseCopy(src, join(otherFs, "dest"));
    await copy(src, join(otherFs, "dest2"), writeBack, copier);
    expectSparseCopy(src, join(otherFs, "dest2"));
    expect([cross.calls, unsupported.calls]).toEqual([1, 1]);
  });

  it("copies on the calling thread with copySync, across filesystems and with fallbacks, holes kept", () => {
    const src = join(dir, "src");
    writeSparse(src);
    const readWrite = RANGE_METHODS.find((m) => m.name === "read/write");
    if (readWrite === undefined) throw new Error("no read/write method");
    const refused = refusing("ENOSYS");
    for (const [name, copier] of [
      ["default methods", new DataCopier(true)],
      ["after a refusal", new DataCopier(true, [refused, readWrite])],
    ] as const) {
      const dest = join(otherFs, name.replaceAll(" ", "-"));
      const from = openSync(src, "r");
      const to = openSync(dest, "wx");
      try {
        copier.copySync(
          { fd: from, dev: BigInt(statSync(src).dev) },
          { fd: to, dev: BigInt(statSync(otherFs).dev) },
          80 * MiB,
        );
        ftruncateSync(to, 80 * MiB);
      } finally {
        closeSync(from);
        closeSync(to);
      }
      expectSparseCopy(src, dest);
    }
    expect(refused.calls).toBe(1);
  });

  it("throws what is not a refusal, without trying the next method", async () => {
    const failing = refusing("EIO");
    const next = refusing("EXDEV");
    const copier = new DataCopier(true, [failing, next]);
    const src = join(dir, "src");
    writeSparse(src);
    await expect(copy(src, join(otherFs, "dest"), true, copier)).rejects.toThrow(/EIO/);
    expect([failing.calls, next.calls]).toEqual([1, 0]);
  });

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
      await new DataCopier(false).copy({ fd: from, dev: 0n }, { fd: to, dev: 0n }, 64 * MiB);
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
