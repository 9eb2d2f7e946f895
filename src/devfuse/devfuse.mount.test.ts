/**
 * What a transport speaking the kernel protocol itself gives that fuse-native cannot (its limits
 * are pinned in write-differential.mount.test.ts): one kernel inode per union inode, so every
 * name of a hard link shows a change at once; files unlinked while open served through their
 * handle (no .fuse_hidden files); rename flags; names that are not UTF-8. Each is checked
 * against kernel overlayfs on the same layers.
 */
import { execFileSync } from "node:child_process";
import {
  chmodSync,
  closeSync,
  fstatSync,
  ftruncateSync,
  linkSync,
  mkdirSync,
  openSync,
  readdirSync,
  readSync,
  renameSync,
  statSync,
  unlinkSync,
  writeFileSync,
  writeSync,
} from "node:fs";
import { dirname, join } from "node:path";
import { fileURLToPath } from "node:url";
import { afterEach, beforeEach, expect, it } from "vitest";
import { AT_FDCWD } from "../sys/libc.js";
import { RENAME_EXCHANGE, RENAME_NOREPLACE, renameat2 } from "../sys/rename.js";
import { mountUnionfs } from "../testing/mounts.js";
import { describeAsRoot } from "../testing/root-gate.js";
import { Scratch } from "../testing/scratch.js";
import { selectedTransports } from "../testing/transports.js";
import { mountKernel } from "../testing/write-sequence.js";

const DENTS_PY = join(dirname(fileURLToPath(import.meta.url)), "../testing/dents.py");
/** names in lower/many: several getdents(2) calls and many READDIR requests */
const MANY = 2000;

for (const transport of selectedTransports().filter((t) => t !== "fuse-native")) {
  describeAsRoot(`one inode per object, ${transport}: kernel overlayfs vs unionfs`, () => {
    inodeTests(transport);
  });
}

function inodeTests(transport: string): void {
  let t: Scratch;
  let mounts: string[];
  let upper: string;
  beforeEach(async () => {
    t = new Scratch("unionfs-devfuse-");
    const lower = t.mkdir("lower");
    writeFileSync(join(lower, "hl1"), "hard link\n");
    t.mkdir("lower/d");
    linkSync(join(lower, "hl1"), join(lower, "d/hl2"));
    writeFileSync(join(lower, "f"), "lower file\n");
    t.mkdir("lower/dir");
    writeFileSync(join(lower, "dir/inside"), "x");
    t.mkdir("lower/many");
    for (let i = 0; i < MANY; i++) writeFileSync(join(lower, `many/a-name-long-enough-to-fill-pages-${i}`), "");
    const kernel = mountKernel(t, [lower], t.mkdir("ku"), t.mkdir("kw"), t.mkdir("km"));
    upper = t.mkdir("uu");
    const ours = await mountUnionfs(t, { lowers: [lower], upper, work: t.mkdir("uw") }, t.mkdir("um"), {
      transport,
    });
    mounts = [kernel.mountpoint, ours.mountpoint];
  });
  afterEach(async () => {
    await t.cleanup();
  });

  /** The same observation on both mounts: [kernel, unionfs]. */
  function both<T>(see: (mnt: string) => T): { kernel: T; unionfs: T } {
    const [kernel, unionfs] = mounts.map(see) as [T, T];
    return { kernel, unionfs };
  }

  function agree<T>(see: (mnt: string) => T): T {
    const seen = both(see);
    expect(seen.unionfs).toEqual(seen.kernel);
    return seen.unionfs;
  }

  it("every name of a lower hard link shows a write, a chmod and a new link at once", () => {
    // each name is looked up (and its attributes cached) before the change through the other
    agree((m) => [statSync(join(m, "hl1")).size, statSync(join(m, "d/hl2")).size]);
    agree((m) => {
      withFile(join(m, "d/hl2"), "a", (fd) => writeSync(fd, "more\n"));
      return statSync(join(m, "hl1")).size;
    });
    expect(agree((m) => statSync(join(m, "hl1")).size)).toBe(15);
    agree((m) => {
      linkSync(join(m, "hl1"), join(m, "third"));
      return [statSync(join(m, "d/hl2")).nlink, statSync(join(m, "hl1")).nlink];
    });
    expect(agree((m) => statSync(join(m, "d/hl2")).nlink)).toBe(3);
    expect(
      agree((m) => {
        chmodSync(join(m, "third"), 0o600);
        return statSync(join(m, "d/hl2")).mode & 0o777;
      }),
    ).toBe(0o600);
    expect(agree((m) => statSync(join(m, "hl1")).ino === statSync(join(m, "d/hl2")).ino)).toBe(true);
  });

  it("a file unlinked while open keeps its data and attributes, and leaves no name behind", () => {
    const seen = agree((m) => {
      return withFile(join(m, "f"), "r+", (fd) => {
        unlinkSync(join(m, "f"));
        const afterUnlink = fstatSync(fd);
        writeSync(fd, "rewritten!", 0);
        ftruncateSync(fd, 4);
        const buf = Buffer.alloc(64);
        const n = readSync(fd, buf, 0, 64, 0);
        return {
          nlink: afterUnlink.nlink,
          data: buf.subarray(0, n).toString(),
          size: fstatSync(fd).size,
          names: readdirSync(m).sort(),
        };
      });
    });
    expect(seen).toEqual({ nlink: 0, data: "rewr", size: 4, names: ["d", "dir", "hl1", "many"] });
  });

  it("rename with RENAME_NOREPLACE refuses an existing name; RENAME_EXCHANGE swaps a lower file and a lower directory", () => {
    const errors = both((m) => {
      try {
        renameat2(AT_FDCWD, join(m, "f"), AT_FDCWD, join(m, "hl1"), RENAME_NOREPLACE);
        return "renamed";
      } catch (e) {
        return (e as { code?: string }).code;
      }
    });
    expect(errors).toEqual({ kernel: "EEXIST", unionfs: "EEXIST" });
    const after = agree((m) => {
      renameat2(AT_FDCWD, join(m, "f"), AT_FDCWD, join(m, "dir"), RENAME_EXCHANGE);
      return { names: readdirSync(m).sort(), inside: readdirSync(join(m, "f")), file: statSync(join(m, "dir")).size };
    });
    expect(after).toEqual({ names: ["d", "dir", "f", "hl1", "many"], inside: ["inside"], file: 11 });
  });

  it("a file open from below keeps working when its copy-up is opened for writing, and follows the copy", () => {
    const seen = agree((m) => {
      const path = join(m, "f");
      return withFile(path, "r", (reader) => {
        const before = readAll(reader);
        const written = withFile(path, "a", (writer) => writeSync(writer, "appended\n"));
        const after = readAll(reader);
        // a new open once the copy-up is the only data left: an open for reading, one for writing
        const reread = withFile(path, "r", (fd) =>
          withFile(path, "r+", (rw) => {
            writeSync(rw, "L", 0);
            return readAll(fd);
          }),
        );
        return { before, written, after, reread };
      });
    });
    expect(seen).toEqual({
      before: "lower file\n",
      written: 9,
      after: "lower file\nappended\n",
      reread: "Lower file\nappended\n",
    });
  });

  it("an upper file's data passes through to the upper file itself (FUSE passthrough)", () => {
    const [, ours] = mounts as [string, string];
    const path = join(ours, "new");
    writeFileSync(path, "written through the mount\n");
    withFile(path, "r", (fd) => {
      expect(readAll(fd)).toBe("written through the mount\n");
      // a change behind the mount shows at once only when the kernel reads the upper file
      // itself; a page cache the daemon fills would go on showing what it read first
      writeFileSync(join(upper, "new"), "changed below the mount\n");
      expect(readAll(fd)).toBe("changed below the mount\n");
    });
  });

  it("a directory listed, then moved to another parent, lists the new parent as '..'", () => {
    const [, ours] = mounts as [string, string];
    const dotdot = (dir: string) => dents(dir).find(([name]) => name === "..")?.[1];
    // the kernel now caches this listing, `..` and all
    expect(dotdot(join(ours, "dir"))).toBe(String(statSync(ours, { bigint: true }).ino));
    mkdirSync(join(ours, "to"));
    renameSync(join(ours, "dir"), join(ours, "to/dir"));
    expect(dotdot(join(ours, "to/dir"))).toBe(String(statSync(join(ours, "to"), { bigint: true }).ino));
  });

  it("entries removed while their directory is read, a few at a time, are each seen once", () => {
    const removed = agree((m) => {
      const script = [
        "import os, sys",
        "seen = []",
        "with os.scandir(sys.argv[1]) as it:",
        "    for e in it:",
        "        os.unlink(e.path)",
        "        seen.append(e.name)",
        "os.rmdir(sys.argv[1])",
        "print(len(seen), len(set(seen)))",
      ].join("\n");
      return execFileSync("python3", ["-c", script, join(m, "many")], { encoding: "utf8" }).trim();
    });
    expect(removed).toBe(`${MANY} ${MANY}`);
  });

  it("an xattr whose name is not ASCII is set, read, listed and removed by that name", () => {
    const seen = agree((m) => {
      const file = join(m, "f");
      const attr = (...args: string[]) => execFileSync(args[0] as string, args.slice(1), { encoding: "utf8" });
      attr("setfattr", "-n", "user.café", "-v", "value", file);
      const read = attr("getfattr", "--only-values", "-n", "user.café", file);
      const listed = attr("getfattr", "--absolute-names", "-d", "-m", "^user\\.", file);
      attr("setfattr", "-x", "user.café", file);
      return { read, listed: listed.split("\n").slice(1), after: attr("getfattr", "--absolute-names", "-d", file) };
    });
    expect(seen).toEqual({ read: "value", listed: ['user.café="value"', "", ""], after: "" });
  });

  it("a name that is not UTF-8 is created, listed and opened as its bytes", () => {
    const name = Buffer.from([0x63, 0x61, 0x66, 0xe9]);
    const listed = agree((m) => {
      writeFileSync(Buffer.concat([Buffer.from(`${m}/`), name]), "latin-1\n");
      return readdirSync(m, { encoding: "buffer" })
        .filter((n) => n.equals(name))
        .map((n) => n.toString("hex"));
    });
    expect(listed).toEqual([name.toString("hex")]);
  });
}

/** `dir`'s entries as getdents(2) gives them: [name, d_ino as a decimal string, d_type]. */
function dents(dir: string): [string, string, number][] {
  const [listing] = JSON.parse(execFileSync("python3", [DENTS_PY, dir], { encoding: "utf8" })) as [
    Record<string, [string, string, number][]>,
  ];
  return listing[""] ?? [];
}

/** The whole file from offset 0. */
function readAll(fd: number): string {
  const buf = Buffer.alloc(4096);
  const n = readSync(fd, buf, 0, buf.length, 0);
  return buf.subarray(0, n).toString();
}

/** Runs `use` on `path` opened with `flags`, closing it whatever happens (an open fd keeps the mount busy). */
function withFile<T>(path: string, flags: string, use: (fd: number) => T): T {
  const fd = openSync(path, flags);
  try {
    return use(fd);
  } finally {
    closeSync(fd);
  }
}
