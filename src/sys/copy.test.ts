import {
  closeSync,
  fstatSync,
  ftruncateSync,
  mkdtempSync,
  openSync,
  readFileSync,
  readSync,
  rmSync,
  statSync,
  writeSync,
} from "node:fs";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { afterEach, beforeEach, describe, expect, it } from "vitest";
import {
  awaitWriteback,
  copyFileRange,
  ficlone,
  seekData,
  seekHole,
  sendfileAt,
  sendfileAtAsync,
  startWriteback,
} from "./copy.js";

const MiB = 1024 * 1024;
let dir: string;
const fds: number[] = [];
beforeEach(() => {
  dir = mkdtempSync(join(tmpdir(), "unionfs-copy-"));
});
afterEach(() => {
  for (const fd of fds.splice(0)) closeSync(fd);
  rmSync(dir, { recursive: true, force: true });
});

function open(name: string, flags: string): number {
  const fd = openSync(join(dir, name), flags);
  fds.push(fd);
  return fd;
}

/** 4 MiB with 64 KiB of data at 0, at 2 MiB, and a hole up to the end. */
function makeSparse(name: string): number {
  const fd = open(name, "w+");
  writeSync(fd, Buffer.alloc(64 * 1024, 1), 0, 64 * 1024, 0);
  writeSync(fd, Buffer.alloc(64 * 1024, 2), 0, 64 * 1024, 2 * MiB);
  ftruncateSync(fd, 4 * MiB);
  return fd;
}

/** The copy-up data loop: only data segments are copied, holes stay holes. */
function copySparse(src: number, dest: number): void {
  const size = fstatSync(src).size;
  ftruncateSync(dest, size);
  let off = 0;
  for (;;) {
    const data = seekData(src, off);
    if (data < 0) break;
    const end = seekHole(src, data);
    let pos = data;
    while (pos < end) {
      const n = copyFileRange(src, pos, dest, pos, end - pos);
      if (n === 0) break;
      pos += n;
    }
    off = end;
  }
}

describe("seekData / seekHole", () => {
  it("walks the data segments and returns -1 past the data", () => {
    const fd = makeSparse("s");
    expect(seekData(fd, 0)).toBe(0);
    const hole = seekHole(fd, 0);
    expect(hole).toBeGreaterThanOrEqual(64 * 1024);
    expect(hole).toBeLessThanOrEqual(2 * MiB);
    expect(seekData(fd, hole)).toBeLessThanOrEqual(2 * MiB);
    expect(seekData(fd, 3 * MiB)).toBe(-1);
    expect(seekHole(fd, 3 * MiB)).toBe(3 * MiB);
    expect(seekData(fd, 5 * MiB)).toBe(-1);
  });
});

describe("copyFileRange", () => {
  it("copies a sparse file keeping its holes", () => {
    const src = makeSparse("src");
    const dest = open("dest", "w+");
    copySparse(src, dest);
    expect(readFileSync(join(dir, "dest")).equals(readFileSync(join(dir, "src")))).toBe(true);
    const s = statSync(join(dir, "src"));
    const d = statSync(join(dir, "dest"));
    expect(d.size).toBe(4 * MiB);
    expect(d.blocks).toBeLessThanOrEqual(s.blocks + 64); // 512-byte blocks; slack for fs metadata
    expect(d.blocks * 512).toBeLessThan(MiB);
  });

  it("uses and advances the file positions when offsets are null", () => {
    const src = open("a", "w+");
    writeSync(src, Buffer.from("hello world"), 0, 11, 0);
    const dest = open("b", "w+");
    // Positional writes leave both file positions at 0.
    expect(copyFileRange(src, null, dest, null, 5)).toBe(5);
    expect(copyFileRange(src, null, dest, null, 100)).toBe(6);
    expect(copyFileRange(src, null, dest, null, 100)).toBe(0);
    expect(readFileSync(join(dir, "b"), "utf8")).toBe("hello world");
  });

  it("throws FsError on a bad fd", () => {
    const dest = open("b", "w+");
    expect(() => copyFileRange(9999, 0, dest, 0, 1)).toThrow(expect.objectContaining({ code: "EBADF" }));
  });
});

describe("sendfileAt", () => {
  /** /dev/shm: a tmpfs, another filesystem than tmpdir()'s, writable without root */
  function openOnShm(flags: string): number {
    const shm = mkdtempSync("/dev/shm/unionfs-copy-");
    const fd = openSync(join(shm, "dest"), flags);
    rmSync(shm, { recursive: true, force: true }); // the open fd keeps the file
    fds.push(fd);
    return fd;
  }

  it("copies between explicit offsets across filesystems, where copy_file_range refuses", async () => {
    const src = open("src", "w+");
    writeSync(src, Buffer.from("0123456789"), 0, 10, 0);
    const dest = openOnShm("w+");
    expect(() => copyFileRange(src, 0, dest, 0, 10)).toThrow(expect.objectContaining({ code: "EXDEV" }));
    expect(sendfileAt(src, 6, dest, 2, 100)).toBe(4);
    expect(await sendfileAtAsync(src, 0, dest, 0, 2)).toBe(2);
    expect(sendfileAt(src, 10, dest, 6, 100)).toBe(0);
    const out = Buffer.alloc(6);
    expect(readSync(dest, out, 0, 6, 0)).toBe(6);
    expect(out.toString()).toBe("016789");
  });

  it("reports a bad fd as EBADF, also from the worker thread", async () => {
    const dest = open("b", "w+");
    expect(() => sendfileAt(9999, 0, dest, 0, 1)).toThrow(expect.objectContaining({ code: "EBADF" }));
    await expect(sendfileAtAsync(9999, 0, dest, 0, 1)).rejects.toMatchObject({ code: "EBADF", syscall: "sendfile" });
  });
});

describe("startWriteback / awaitWriteback", () => {
  it("writes a range back and leaves its data as it was", async () => {
    const fd = open("f", "w+");
    const data = Buffer.alloc(3 * MiB, 7);
    writeSync(fd, data, 0, data.length, 0);
    startWriteback(fd, 0, MiB);
    await awaitWriteback(fd, 0, MiB);
    await awaitWriteback(fd, MiB, 2 * MiB);
    expect(readFileSync(join(dir, "f")).equals(data)).toBe(true);
  });

  it("reports a bad fd as EBADF, also from the worker thread", async () => {
    expect(() => startWriteback(9999, 0, 1)).toThrow(expect.objectContaining({ code: "EBADF" }));
    await expect(awaitWriteback(9999, 0, 1)).rejects.toMatchObject({ code: "EBADF", syscall: "sync_file_range" });
  });
});

describe("ficlone", () => {
  it("clones where the filesystem can, else throws a fallback errno", () => {
    const src = makeSparse("src");
    const dest = open("dest", "w+");
    try {
      ficlone(dest, src);
      expect(readFileSync(join(dir, "dest")).equals(readFileSync(join(dir, "src")))).toBe(true);
    } catch (e) {
      expect(e).toMatchObject({ syscall: "ioctl(FICLONE)" });
      expect(["EOPNOTSUPP", "ENOTSUP", "EXDEV", "EINVAL", "ENOTTY"]).toContain((e as { code: string }).code);
    }
  });
});
