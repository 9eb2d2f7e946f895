/**
 * The core's operations on open directories and files that libfuse 2.9 never sends but the
 * kernel protocol carries: opendir / readdir(offset) / releasedir, lseek (SEEK_DATA /
 * SEEK_HOLE), fallocate and copy_file_range; and a file opened from below before its copy-up,
 * which then serves the copy. In-process, without root or FUSE.
 */
import { closeSync, constants as fsc, ftruncateSync, openSync, readSync, writeSync } from "node:fs";
import { join } from "node:path";
import { describe, expect, it } from "vitest";
import { FALLOC_FL_KEEP_SIZE, FALLOC_FL_PUNCH_HOLE } from "../sys/fallocate.js";
import { file, hardlink } from "../testing/fixture.js";
import { useScratch } from "../testing/scratch.js";
import { errnoOf, UnionHarness } from "../testing/union-harness.js";

const SEEK_DATA = 3;
const SEEK_HOLE = 4;
const MiB = 1 << 20;

describe("open directories", () => {
  const scratch = useScratch("unionfs-core-");

  it("serve a snapshot in chunks: entries added or removed between chunks are neither repeated nor skipped", async () => {
    const names = ["a", "b", "c", "d", "e"];
    const h = await UnionHarness.open(scratch(), { lowers: [names.map((n) => file(`dir/${n}`, n))] });
    const dh = h.fs.opendir(h.node("dir"));
    const first = h.fs.readdirAt(dh, 0, 4);
    expect(first.map((e) => e.name)).toEqual([".", "..", "a", "b"]);
    h.rm("dir/c");
    h.writeFile("dir/aa", "new");
    const rest = h.fs.readdirAt(dh, first.at(-1)?.next ?? 0);
    expect(rest.map((e) => e.name)).toEqual(["c", "d", "e"]);
    // offset 0 again (rewinddir) lists the directory as it is now
    expect(h.fs.readdirAt(dh, 0).map((e) => e.name)).toEqual([".", "..", "a", "aa", "b", "d", "e"]);
    h.fs.releasedir(dh);
    expect(errnoOf(() => h.fs.readdirAt(dh, 0))).toBe("EBADF");
  });

  it("opendir of a file is ENOTDIR", async () => {
    const h = await UnionHarness.open(scratch(), { lowers: [[file("f")]] });
    expect(errnoOf(() => h.fs.opendir(h.node("f")))).toBe("ENOTDIR");
  });
});

describe("open files", () => {
  const scratch = useScratch("unionfs-core-");

  /** a lower file of 4 MiB: data in its first and third MiB, holes elsewhere */
  async function sparse() {
    const h = await UnionHarness.open(scratch(), {
      lowers: [[file("f")]],
      prepare: ({ lowers }) => {
        const fd = openSync(join(lowers[0] as string, "f"), "w");
        writeSync(fd, Buffer.alloc(MiB, 1), 0, MiB, 0);
        writeSync(fd, Buffer.alloc(MiB, 3), 0, MiB, 2 * MiB);
        ftruncateSync(fd, 4 * MiB);
        closeSync(fd);
      },
    });
    return h;
  }

  it("lseek finds data and holes, in a lower file and in its copy", async () => {
    const h = await sparse();
    for (const flags of [fsc.O_RDONLY, fsc.O_RDWR]) {
      const f = h.openFile("f", flags);
      expect(h.fs.lseek(f.fh, 0, SEEK_DATA)).toBe(0);
      expect(h.fs.lseek(f.fh, 0, SEEK_HOLE)).toBe(MiB);
      expect(h.fs.lseek(f.fh, MiB, SEEK_DATA)).toBe(2 * MiB);
      expect(errnoOf(() => h.fs.lseek(f.fh, 3 * MiB, SEEK_DATA))).toBe("ENXIO");
      expect(errnoOf(() => h.fs.lseek(f.fh, 0, 0))).toBe("EINVAL");
      f.close();
    }
  });

  it("fallocate extends and punches holes in the upper copy", async () => {
    const h = await sparse();
    const f = h.openFile("f", fsc.O_RDWR);
    h.fs.fallocate(f.fh, 0, 4 * MiB, MiB);
    expect(f.stat().size).toBe(BigInt(5 * MiB));
    h.fs.fallocate(f.fh, FALLOC_FL_PUNCH_HOLE | FALLOC_FL_KEEP_SIZE, 0, MiB);
    expect(f.read(4, 0)).toEqual(Buffer.alloc(4, 0));
    expect(h.fs.lseek(f.fh, 0, SEEK_DATA)).toBe(2 * MiB);
    f.close();
  });

  it("copy_file_range copies between two open files of the mount", async () => {
    const h = await UnionHarness.open(scratch(), { lowers: [[file("src", "0123456789")]] });
    const from = h.openFile("src", fsc.O_RDONLY);
    const to = h.create("dest");
    expect(h.fs.copyFileRange(from.fh, 2, to.fh, 0, 5, 0)).toBe(5);
    expect(errnoOf(() => h.fs.copyFileRange(from.fh, 0, to.fh, 0, 1, 1))).toBe("EINVAL");
    from.close();
    to.close();
    expect(h.readText("dest")).toBe("23456");
  });
});

// overlayfs (>= 4.19, ovl_real_fdget) notices the copy-up and serves the upper file, and its fstat
// is the object's getattr: both show what was done through other opens and names since
describe("a file opened from below before its copy-up", () => {
  const scratch = useScratch("unionfs-core-");

  it("reads what another open file wrote after the copy-up, through the core and through the raw fd", async () => {
    const h = await UnionHarness.open(scratch(), { lowers: [[file("f", "lower")]] });
    const reader = h.openFile("f", fsc.O_RDONLY);
    h.writeAt("f", "UPPER", 0);
    expect(reader.read().toString()).toBe("UPPER");
    const other = h.openFile("f", fsc.O_RDONLY);
    h.writeAt("f", "u", 0);
    const buf = Buffer.alloc(16);
    const n = readSync(h.fs.fd(other.fh), buf, 0, 16, 0);
    expect(buf.subarray(0, n).toString()).toBe("uPPER");
  });

  it("fstat shows a chmod made after the copy-up", async () => {
    const h = await UnionHarness.open(scratch(), { lowers: [[file("f", "lower", 0o644)]] });
    const reader = h.openFile("f", fsc.O_RDONLY);
    h.chmod("f", 0o600);
    expect(Number(reader.stat().mode) & 0o777).toBe(0o600);
  });

  it("reads the copy after the name is gone, if the copy-up came first", async () => {
    const h = await UnionHarness.open(scratch(), { lowers: [[file("f", "lower")]] });
    const reader = h.openFile("f", fsc.O_RDONLY);
    h.writeAt("f", "UPPER", 0);
    h.rm("f");
    expect([reader.read().toString(), reader.stat().size]).toEqual(["UPPER", 5n]);
  });

  it("a name of a hard-linked file reads what another name, since removed, wrote", async () => {
    const h = await UnionHarness.open(scratch(), { lowers: [[file("a", "one"), hardlink("b", "a")]] });
    const reader = h.openFile("b", fsc.O_RDONLY);
    h.writeAt("a", "X", 0);
    h.rm("a");
    expect(reader.read().toString()).toBe("Xne");
    expect(h.readText("b")).toBe("Xne");
  });

  it("keeps reading the lower file when nothing was copied up", async () => {
    const h = await UnionHarness.open(scratch(), { lowers: [[file("f", "lower")]] });
    const reader = h.openFile("f", fsc.O_RDONLY);
    h.rm("f");
    expect([reader.read().toString(), reader.stat().size]).toEqual(["lower", 5n]);
  });
});
