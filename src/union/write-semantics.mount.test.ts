/**
 * The write side's on-disk contract, checked on real mounts: what copy-up keeps, what the upper
 * holds after deletes, renames and creates (in the kernel's encodings, or `.wh.` files with
 * --whiteout=file), st_ino across copy-up and remount, hard links, and who owns new objects.
 * The randomized comparison with kernel overlayfs is write-differential.mount.test.ts.
 */
import { execFileSync } from "node:child_process";
import {
  appendFileSync,
  chmodSync,
  closeSync,
  existsSync,
  fstatSync,
  linkSync,
  lstatSync,
  mkdirSync,
  openSync,
  readdirSync,
  readFileSync,
  readlinkSync,
  readSync,
  renameSync,
  rmdirSync,
  unlinkSync,
  writeFileSync,
} from "node:fs";
import { join } from "node:path";
import { describe, expect, it } from "vitest";
import { errorCode } from "../errors.js";
import { lgetxattr, llistxattr } from "../sys/xattr.js";
import { apply, device, dir, fifo, file, hardlink, symlink, whiteout } from "../testing/fixture.js";
import { mountOverlay, mountUnionfs, type StackDirs } from "../testing/mounts.js";
import { type Scratch, useScratch } from "../testing/scratch.js";
import { selectedTransports } from "../testing/transports.js";

const MTIME = 1_500_000_000;

function codeOf(fn: () => unknown): string | undefined {
  try {
    fn();
    return undefined;
  } catch (e) {
    return errorCode(e);
  }
}

/** A one-lower stack in `s`; `prefix` names its directories apart from another stack's. */
async function stackWith(
  s: Scratch,
  lower: Parameters<typeof apply>[1],
  prefix = "",
): Promise<StackDirs & { upper: string; work: string }> {
  const l = s.mkdir(`${prefix}lower`);
  await apply(l, lower);
  return { lowers: [l], upper: s.mkdir(`${prefix}upper`), work: s.mkdir(`${prefix}work`) };
}

for (const transport of selectedTransports()) {
  writeSemanticsTests(transport);
}

function writeSemanticsTests(transport: string): void {
  describe(`copy-up, ${transport}`, () => {
    const scratch = useScratch();

    it("keeps owner, set-id and sticky bits, user xattrs and times, and records the origin", async () => {
      const s = scratch();
      const stack = await stackWith(s, [
        dir("d", { mode: 0o1777, uid: 7, gid: 8, mtime: MTIME }),
        file("d/f", "data", { mode: 0o6755, uid: 1234, gid: 5678, mtime: MTIME, xattrs: { "user.tag": "kept" } }),
      ]);
      const mnt = s.mkdir("mnt");
      await mountUnionfs(s, stack, mnt, { transport });
      const inoBefore = lstatSync(join(mnt, "d/f")).ino;
      execFileSync("setfattr", ["-n", "user.extra", "-v", "x", join(mnt, "d/f")]);
      const up = lstatSync(join(stack.upper, "d/f"));
      expect([up.mode & 0o7777, up.uid, up.gid, up.mtimeMs]).toEqual([0o6755, 1234, 5678, MTIME * 1000]);
      expect(readFileSync(join(stack.upper, "d/f"), "utf8")).toBe("data");
      expect(lgetxattr(join(stack.upper, "d/f"), "user.tag")?.toString()).toBe("kept");
      expect(lgetxattr(join(stack.upper, "d/f"), "trusted.overlay.origin")).not.toBeNull();
      const parent = lstatSync(join(stack.upper, "d"));
      expect([parent.mode & 0o7777, parent.uid, parent.gid, parent.mtimeMs]).toEqual([0o1777, 7, 8, MTIME * 1000]);
      expect(lstatSync(join(mnt, "d")).mtimeMs).toBe(MTIME * 1000);
      expect(lstatSync(join(mnt, "d/f")).ino).toBe(inoBefore);
      expect(readdirSync(join(stack.work, "work"))).toEqual([]);
    });

    it("copies fifos and device nodes as metadata, keeping their type", async () => {
      const s = scratch();
      const stack = await stackWith(s, [fifo("p", 0o640), device("null", "char", 1, 3, { mode: 0o666 })]);
      const mnt = s.mkdir("mnt");
      await mountUnionfs(s, stack, mnt, { transport });
      chmodSync(join(mnt, "p"), 0o600);
      chmodSync(join(mnt, "null"), 0o600);
      expect(lstatSync(join(stack.upper, "p")).isFIFO()).toBe(true);
      const dev = lstatSync(join(stack.upper, "null"));
      expect([dev.isCharacterDevice(), dev.rdev, dev.mode & 0o777]).toEqual([true, lstatSync("/dev/null").rdev, 0o600]);
    });

    it("never copies on read, stat or access", async () => {
      const s = scratch();
      const stack = await stackWith(s, [dir("d"), file("d/f", "x")]);
      const mnt = s.mkdir("mnt");
      await mountUnionfs(s, stack, mnt, { transport });
      readFileSync(join(mnt, "d/f"));
      lstatSync(join(mnt, "d/f"));
      execFileSync("test", ["-w", join(mnt, "d/f")]);
      expect(readdirSync(stack.upper)).toEqual([]);
    });

    it("keeps st_ino across copy-up and remount, for kernel overlayfs too", async () => {
      const s = scratch();
      const stack = await stackWith(s, [dir("d"), file("d/changed", "a"), file("d/untouched", "b")]);
      const mnt = s.mkdir("mnt");
      const m = await mountUnionfs(s, stack, mnt, { transport });
      const before = ["d", "d/changed", "d/untouched"].map((p) => lstatSync(join(mnt, p)).ino);
      appendFileSync(join(mnt, "d/changed"), "more");
      await m.unmount();
      await mountUnionfs(s, stack, mnt, { transport });
      expect(["d", "d/changed", "d/untouched"].map((p) => lstatSync(join(mnt, p)).ino)).toEqual(before);
      const kmnt = s.mkdir("kernel");
      await mountOverlay(s, { ...stack, work: s.mkdir("kwork") }, kmnt);
      expect(["d", "d/changed", "d/untouched"].map((p) => lstatSync(join(kmnt, p)).ino)).toEqual(before);
    });

    // overlayfs >= 4.19 (ovl_real_fdget) switches a file opened from below to the upper copy
    it("a file opened read-only before its copy-up reads and fstats the copy, as on overlayfs", async () => {
      const s = scratch();
      const seen = (mnt: string) => {
        const path = join(mnt, "f");
        const reader = openSync(path, "r");
        try {
          writeFileSync(path, "UPPER", { flag: "r+" });
          chmodSync(path, 0o600);
          const buf = Buffer.alloc(64);
          const n = readSync(reader, buf, 0, 64, 0);
          return { data: buf.subarray(0, n).toString(), mode: fstatSync(reader).mode & 0o777 };
        } finally {
          closeSync(reader);
        }
      };
      const kmnt = s.mkdir("kmnt");
      await mountOverlay(s, await stackWith(s, [file("f", "lower", 0o644)], "k-"), kmnt);
      const kernel = seen(kmnt);
      expect(kernel).toEqual({ data: "UPPER", mode: 0o600 });
      const mnt = s.mkdir("mnt");
      await mountUnionfs(s, await stackWith(s, [file("f", "lower", 0o644)], "u-"), mnt, { transport });
      expect(seen(mnt)).toEqual(kernel);
    });

    it("keeps lower hard links one file after copy-up, with the right st_nlink", async () => {
      const s = scratch();
      const stack = await stackWith(s, [file("a", "one"), hardlink("b", "a"), hardlink("c", "a")]);
      const mnt = s.mkdir("mnt");
      const m = await mountUnionfs(s, stack, mnt, { transport });
      const ino = lstatSync(join(mnt, "a")).ino;
      appendFileSync(join(mnt, "a"), "+two");
      unlinkSync(join(mnt, "c"));
      await m.unmount();
      await mountUnionfs(s, stack, mnt, { transport });
      for (const name of ["a", "b"]) {
        const st = lstatSync(join(mnt, name));
        expect([readFileSync(join(mnt, name), "utf8"), st.ino, st.nlink]).toEqual(["one+two", ino, 2]);
      }
    });
  });

  describe(`hard links, ${transport}`, () => {
    const scratch = useScratch();

    // after the remount a's node is made from its upper name, which knows no lower object
    it("a copied-up hard link: after a remount, its lower-only name can be removed", async () => {
      const s = scratch();
      const stack = await stackWith(s, [file("a", "one"), hardlink("b", "a")]);
      const mnt = s.mkdir("mnt");
      const m = await mountUnionfs(s, stack, mnt, { transport });
      writeFileSync(join(mnt, "a"), "X", { flag: "r+" });
      await m.unmount();
      await mountUnionfs(s, stack, mnt, { transport });
      readFileSync(join(mnt, "a"));
      expect(codeOf(() => unlinkSync(join(mnt, "b")))).toBeUndefined();
      expect([readdirSync(mnt), readFileSync(join(mnt, "a"), "utf8"), lstatSync(join(mnt, "a")).nlink]).toEqual([
        ["a"],
        "Xne",
        1,
      ]);
    });

    // user.overlay.* cannot be set on a symlink: its copy has no origin record
    it("--whiteout=file: a hard link to a lower symlink is one file with two names", async () => {
      const s = scratch();
      const stack = await stackWith(s, [symlink("s", "target")]);
      const mnt = s.mkdir("mnt");
      await mountUnionfs(s, stack, mnt, { transport, args: ["--whiteout=file"] });
      expect(codeOf(() => linkSync(join(mnt, "s"), join(mnt, "t")))).toBeUndefined();
      // t's attributes are fresh from the link reply; the kernel may still cache s's nlink
      const [st, tt] = [lstatSync(join(mnt, "s")), lstatSync(join(mnt, "t"))];
      expect([readdirSync(mnt).sort(), readlinkSync(join(mnt, "t")), tt.nlink, tt.ino]).toEqual([
        ["s", "t"],
        "target",
        2,
        st.ino,
      ]);
    });
  });

  describe(`whiteouts and opaque directories, ${transport}`, () => {
    const scratch = useScratch();

    it("writes a char 0/0 whiteout only for names that exist below", async () => {
      const s = scratch();
      const stack = await stackWith(s, [file("lower.txt", "x")]);
      const mnt = s.mkdir("mnt");
      await mountUnionfs(s, stack, mnt, { transport });
      writeFileSync(join(mnt, "new.txt"), "y");
      unlinkSync(join(mnt, "new.txt"));
      unlinkSync(join(mnt, "lower.txt"));
      expect(readdirSync(stack.upper)).toEqual(["lower.txt"]);
      const wh = lstatSync(join(stack.upper, "lower.txt"));
      expect([wh.isCharacterDevice(), wh.rdev]).toEqual([true, 0]);
      expect(readdirSync(mnt)).toEqual([]);
    });

    it("rmdir: ENOTEMPTY while the merged view has entries; a dir holding only whiteouts is empty", async () => {
      const s = scratch();
      const stack = await stackWith(s, [dir("d"), file("d/a", "1"), file("d/b", "2")]);
      const mnt = s.mkdir("mnt");
      await mountUnionfs(s, stack, mnt, { transport });
      unlinkSync(join(mnt, "d/a"));
      expect(codeOf(() => rmdirSync(join(mnt, "d")))).toBe("ENOTEMPTY");
      unlinkSync(join(mnt, "d/b"));
      rmdirSync(join(mnt, "d"));
      expect(existsSync(join(mnt, "d"))).toBe(false);
      expect(lstatSync(join(stack.upper, "d")).isCharacterDevice()).toBe(true);
    });

    it("mkdir over a whiteout makes an opaque dir; a file created over one replaces it", async () => {
      const s = scratch();
      const stack = await stackWith(s, [dir("d"), file("d/old", "x"), file("f", "lower")]);
      const mnt = s.mkdir("mnt");
      await mountUnionfs(s, stack, mnt, { transport });
      unlinkSync(join(mnt, "d/old"));
      rmdirSync(join(mnt, "d"));
      mkdirSync(join(mnt, "d"));
      expect(readdirSync(join(mnt, "d"))).toEqual([]);
      expect(lgetxattr(join(stack.upper, "d"), "trusted.overlay.opaque")?.toString()).toBe("y");
      unlinkSync(join(mnt, "f"));
      writeFileSync(join(mnt, "f"), "new");
      expect(lstatSync(join(stack.upper, "f")).isFile()).toBe(true);
      expect(readFileSync(join(mnt, "f"), "utf8")).toBe("new");
    });

    it("--whiteout=file writes .wh. files and user.overlay.opaque", async () => {
      const s = scratch();
      const stack = await stackWith(s, [dir("d"), file("d/x", "1"), file("gone", "2")]);
      const mnt = s.mkdir("mnt");
      await mountUnionfs(s, stack, mnt, { transport, args: ["--whiteout=file"] });
      unlinkSync(join(mnt, "gone"));
      unlinkSync(join(mnt, "d/x"));
      rmdirSync(join(mnt, "d"));
      mkdirSync(join(mnt, "d"));
      expect(readdirSync(stack.upper).sort()).toEqual([".wh.gone", "d"]);
      expect(lgetxattr(join(stack.upper, "d"), "user.overlay.opaque")?.toString()).toBe("y");
      expect(readdirSync(mnt).sort()).toEqual(["d"]);
      expect(readdirSync(join(mnt, "d"))).toEqual([]);
    });

    // kernel overlayfs takes `.wh.x` as a plain name; unionfs reads `.wh.` entries as whiteouts
    // in every layer, so it refuses the name (as fuse-overlayfs does) rather than lose x
    it("refuses names starting with .wh. (EINVAL), and never finds a whiteout file by name", async () => {
      const s = scratch();
      const stack = await stackWith(s, [file("x", "1"), file("gone", "2")]);
      const mnt = s.mkdir("mnt");
      await mountUnionfs(s, stack, mnt, { transport, args: ["--whiteout=file"] });
      unlinkSync(join(mnt, "gone"));
      const codes = [
        codeOf(() => writeFileSync(join(mnt, ".wh.x"), "")),
        codeOf(() => mkdirSync(join(mnt, ".wh.x"))),
        codeOf(() => renameSync(join(mnt, "x"), join(mnt, ".wh.y"))),
        codeOf(() => lstatSync(join(mnt, ".wh.gone"))),
        codeOf(() => unlinkSync(join(mnt, ".wh.gone"))),
      ];
      expect(codes).toEqual(["EINVAL", "EINVAL", "EINVAL", "ENOENT", "ENOENT"]);
      expect(readdirSync(mnt)).toEqual(["x"]);
      expect(readdirSync(stack.upper)).toEqual([".wh.gone"]);
    });

    it("reads an upper written by unionfs identically through kernel overlayfs", async () => {
      const s = scratch();
      const stack = await stackWith(s, [
        dir("a/b"),
        file("a/b/f", "deep"),
        file("a/top", "t"),
        whiteout("never"),
        dir("empty"),
      ]);
      const mnt = s.mkdir("mnt");
      const m = await mountUnionfs(s, stack, mnt, { transport });
      renameSync(join(mnt, "a"), join(mnt, "moved"));
      renameSync(join(mnt, "moved/top"), join(mnt, "top"));
      rmdirSync(join(mnt, "empty"));
      mkdirSync(join(mnt, "empty"));
      writeFileSync(join(mnt, "empty/new"), "n");
      // sorted: the kernel lists in its hash order, unionfs by name
      const tree = () =>
        execFileSync("find", [".", "-printf", "%p %y %s %i\n"], { cwd: mnt }).toString().split("\n").sort().join("\n");
      const expected = tree();
      await m.unmount();
      await mountOverlay(s, { ...stack, work: stack.work }, mnt);
      expect(tree()).toBe(expected);
      expect(lgetxattr(join(stack.upper, "moved"), "trusted.overlay.redirect")?.toString()).toBe("/a");
    });

    it("hides overlay-private xattrs and refuses to set them", async () => {
      const s = scratch();
      const stack = await stackWith(s, [dir("d")]);
      const mnt = s.mkdir("mnt");
      await mountUnionfs(s, stack, mnt, { transport });
      renameSync(join(mnt, "d"), join(mnt, "e"));
      expect(llistxattr(join(mnt, "e")).filter((n) => n.includes("overlay"))).toEqual([]);
      expect(() =>
        execFileSync("setfattr", ["-n", "trusted.overlay.opaque", "-v", "y", join(mnt, "e")], {
          stdio: "ignore",
        }),
      ).toThrow();
    });
  });

  describe(`new objects, ${transport}`, () => {
    const scratch = useScratch();

    it("belong to the calling uid/gid, and take the group of a setgid parent", async () => {
      const s = scratch();
      const stack = await stackWith(s, [dir("pub", 0o1777), dir("grp", { mode: 0o2777, gid: 4242 })]);
      const mnt = s.mkdir("mnt");
      await mountUnionfs(s, stack, mnt, { transport });
      const asUser = (...cmd: string[]) =>
        execFileSync("setpriv", ["--reuid=1000", "--regid=1000", "--clear-groups", ...cmd]);
      asUser("touch", join(mnt, "pub/mine"));
      asUser("mkdir", join(mnt, "grp/sub"));
      const mine = lstatSync(join(mnt, "pub/mine"));
      expect([mine.uid, mine.gid]).toEqual([1000, 1000]);
      const sub = lstatSync(join(mnt, "grp/sub"));
      expect([sub.uid, sub.gid, (sub.mode & 0o2000) !== 0]).toEqual([1000, 4242, true]);
    });
  });

  describe(`work directory, ${transport}`, () => {
    const scratch = useScratch();

    it("is cleared of leftovers at mount", async () => {
      const s = scratch();
      const stack = await stackWith(s, [file("f", "x")]);
      mkdirSync(join(stack.work, "work"), { recursive: true });
      writeFileSync(join(stack.work, "work", "#partial-copy-up"), "junk");
      await mountUnionfs(s, stack, s.mkdir("mnt"), { transport });
      expect(readdirSync(join(stack.work, "work"))).toEqual([]);
    });

    it("must be on the upper's filesystem", async () => {
      const s = scratch();
      const stack = await stackWith(s, [file("f", "x")]);
      const elsewhere = s.mkdir("tmpfs");
      execFileSync("mount", ["-t", "tmpfs", "tmpfs", elsewhere]);
      s.onCleanup(() => {
        execFileSync("umount", [elsewhere]);
      });
      await expect(mountUnionfs(s, { ...stack, work: elsewhere }, s.mkdir("mnt"), { transport })).rejects.toThrow(
        /work directory .* is not on the upper directory's filesystem/,
      );
    });
  });
}
