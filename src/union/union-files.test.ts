/**
 * The core's operations on open directories and files that libfuse 2.9 never sends but the
 * kernel protocol carries: opendir / readdir(offset) / releasedir, lseek (SEEK_DATA /
 * SEEK_HOLE), fallocate and copy_file_range. In-process, without root or FUSE.
 */
import { closeSync, constants as fsc, ftruncateSync, openSync, writeSync } from "node:fs";
import { join } from "node:path";
import { describe, expect, it } from "vitest";
import { FALLOC_FL_KEEP_SIZE, FALLOC_FL_PUNCH_HOLE } from "../sys/fallocate.js";
import { file } from "../testing/fixture.js";
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
