/**
 * The union core's changes to the tree, in-process over temp dirs (no FUSE, no root): whiteouts
 * written by unlink and rmdir, re-creation over them, rename (files, lower directories with a
 * redirect, replacing, errnos), hard links and the hard-link index, and files used after their
 * name is gone. Every case runs with `--whiteout=file` (`.wh.` files, `user.overlay.*`) and,
 * where this process may write them, with the kernel's encodings (char 0/0, `trusted.overlay.*`)
 * as write-semantics.mount.test.ts checks them through a mount.
 */
import { execFileSync } from "node:child_process";
import { chownSync, constants as fsc, lstatSync, readdirSync } from "node:fs";
import { describe, expect, it } from "vitest";
import { OverlayKey } from "../format/overlay-xattr.js";
import type { WhiteoutStyle } from "../format/whiteout-style.js";
import { mayChown } from "../sys/privilege.js";
import { RENAME_EXCHANGE, RENAME_NOREPLACE, RENAME_WHITEOUT } from "../sys/rename.js";
import { lgetxattr, llistxattr } from "../sys/xattr.js";
import { dir, fifo, file, hardlink, symlink, whiteout } from "../testing/fixture.js";
import { useScratch } from "../testing/scratch.js";
import {
  errnoOf,
  processCaller,
  UnionHarness,
  type UnionSpec,
  whiteoutStyleUnavailable,
} from "../testing/union-harness.js";

const STYLES: readonly WhiteoutStyle[] = ["file", "chardev"];

for (const style of STYLES) {
  const unavailable = whiteoutStyleUnavailable(style);
  const suffix = `(--whiteout=${style})${unavailable === null ? "" : ` [skipped: ${unavailable}]`}`;

  describe.skipIf(unavailable !== null)(`whiteouts and re-creation ${suffix}`, () => {
    const scratch = useScratch("unionfs-core-");
    const open = (spec: UnionSpec) => UnionHarness.open(scratch(), { ...spec, options: { whiteout: style } });

    it("unlink writes a whiteout only for names that exist below, removing any upper copy", async () => {
      const h = await open({ lowers: [[file("lower.txt", "x"), file("both.txt", "lower")]] });
      h.writeFile("new.txt", "y");
      h.rm("new.txt");
      h.rm("lower.txt");
      h.writeFile("both.txt", "changed");
      h.rm("both.txt");
      expect(h.upperListing("")).toEqual({ names: [], whiteouts: ["both.txt", "lower.txt"] });
      expect(h.list("")).toEqual([]);
      expect(readdirSync(h.work("work"))).toEqual([]);
    });

    it("rmdir: ENOTEMPTY while the merged view has entries; a directory holding only whiteouts is empty", async () => {
      const h = await open({ lowers: [[dir("d"), file("d/a", "1"), file("d/b", "2")], [file("d/c", "3")]] });
      h.rm("d/a");
      h.rm("d/b");
      expect(errnoOf(() => h.rmdir("d"))).toBe("ENOTEMPTY");
      h.rm("d/c");
      expect(h.upperListing("d").whiteouts).toEqual(["a", "b", "c"]);
      h.rmdir("d");
      expect(h.exists("d")).toBe(false);
      expect(h.upperListing("")).toEqual({ names: [], whiteouts: ["d"] });
      h.mkdir("upper-only");
      h.rmdir("upper-only");
      expect(h.upperListing("")).toEqual({ names: [], whiteouts: ["d"] });
    });

    it("unlink and rmdir errnos: EISDIR, ENOTDIR, ENOENT (also for a whited-out name)", async () => {
      const h = await open({ lowers: [[dir("d"), file("f"), file("gone")]] });
      h.rm("gone");
      expect([
        errnoOf(() => h.rm("d")),
        errnoOf(() => h.rmdir("f")),
        errnoOf(() => h.rm("missing")),
        errnoOf(() => h.rm("gone")),
        errnoOf(() => h.rmdir("gone")),
        errnoOf(() => h.rm("f/x")),
      ]).toEqual(["EISDIR", "ENOTDIR", "ENOENT", "ENOENT", "ENOENT", "ENOTDIR"]);
    });

    it("mkdir over a whiteout makes an opaque dir; a file or symlink created over one replaces it", async () => {
      const h = await open({ lowers: [[dir("d"), file("d/old", "x"), file("f", "lower"), file("l", "lower")]] });
      h.rm("d/old");
      h.rmdir("d");
      h.mkdir("d");
      expect(h.list("d")).toEqual([]);
      expect(h.upperXattr("d", OverlayKey.opaque)?.toString()).toBe("y");
      h.rm("f");
      h.writeFile("f", "new");
      h.rm("l");
      h.symlink("f", "l");
      expect(h.upperListing("")).toEqual({ names: ["d", "f", "l"], whiteouts: [] });
      expect(h.readText("f")).toBe("new");
      expect(h.readlink("l")).toBe("f");
      expect(lstatSync(h.upper("f")).isFile()).toBe(true);
    });

    it("a new directory where nothing was below is not opaque; EEXIST for any name the union shows", async () => {
      const h = await open({ lowers: [[file("f"), dir("d")]] });
      h.mkdir("fresh");
      expect(h.upperXattr("fresh", OverlayKey.opaque)).toBeNull();
      expect([
        errnoOf(() => h.mkdir("f")),
        errnoOf(() => h.create("d")),
        errnoOf(() => h.symlink("x", "fresh")),
      ]).toEqual(["EEXIST", "EEXIST", "EEXIST"]);
    });
  });

  describe.skipIf(unavailable !== null)(`rename ${suffix}`, () => {
    const scratch = useScratch("unionfs-core-");
    const open = (spec: UnionSpec) => UnionHarness.open(scratch(), { ...spec, options: { whiteout: style } });

    it("a lower file is copied up and moved, leaving a whiteout where the lower name remains; st_ino kept", async () => {
      const h = await open({ lowers: [[file("d/f", "content"), dir("e")]] });
      const ino = h.stat("d/f").ino;
      h.mv("d/f", "e/g");
      expect(h.readText("e/g")).toBe("content");
      expect(h.lookup("d/f")).toBeNull();
      expect(h.upperListing("d")).toEqual({ names: [], whiteouts: ["f"] });
      expect(h.upperListing("e")).toEqual({ names: ["g"], whiteouts: [] });
      expect(h.stat("e/g").ino).toBe(ino);
      expect((await h.remount()).stat("e/g").ino).toBe(ino);
    });

    it("RENAME_NOREPLACE refuses an existing target with EEXIST and changes nothing", async () => {
      const h = await open({ lowers: [[file("a", "A"), file("b", "B")]] });
      expect(errnoOf(() => h.mv("a", "b", RENAME_NOREPLACE))).toBe("EEXIST");
      expect([h.readText("a"), h.readText("b")]).toEqual(["A", "B"]);
      h.mv("a", "c", RENAME_NOREPLACE);
      expect([h.lookup("a"), h.readText("c")]).toEqual([null, "A"]);
    });

    it("RENAME_WHITEOUT is refused with EINVAL, as overlayfs refuses it", async () => {
      const h = await open({ lowers: [[file("a", "A")]] });
      expect(errnoOf(() => h.mv("a", "b", RENAME_WHITEOUT))).toBe("EINVAL");
      expect(errnoOf(() => h.mv("a", "b", RENAME_EXCHANGE | RENAME_NOREPLACE))).toBe("EINVAL");
      expect(h.readText("a")).toBe("A");
    });

    it("RENAME_EXCHANGE swaps a lower file and a lower directory, content and numbers following them", async () => {
      const h = await open({ lowers: [[file("p/f", "file"), dir("q/d"), file("q/d/child", "c")]] });
      const [fileIno, dirIno] = [h.stat("p/f").ino, h.stat("q/d").ino];
      expect(errnoOf(() => h.mv("p/f", "q/none", RENAME_EXCHANGE))).toBe("ENOENT");
      h.mv("p/f", "q/d", RENAME_EXCHANGE);
      for (const view of [h, await h.remount()]) {
        expect(view.readText("q/d")).toBe("file");
        expect(view.list("p/f")).toEqual(["child"]);
        expect(view.readText("p/f/child")).toBe("c");
        expect([view.stat("q/d").ino, view.stat("p/f").ino]).toEqual([fileIno, dirIno]);
      }
      // the directory follows its lower content by a redirect; no whiteout is needed
      expect(h.upperXattr("p/f", OverlayKey.redirect)?.toString()).toBe("/q/d");
      expect(h.upperListing("p").whiteouts).toEqual([]);
      expect(h.upperListing("q").whiteouts).toEqual([]);
    });

    it("an upper-only file leaves no whiteout", async () => {
      const h = await open({ lowers: [[file("x")]] });
      h.writeFile("n", "new");
      h.mv("n", "m");
      expect(h.upperListing("")).toEqual({ names: ["m"], whiteouts: [] });
      expect(h.readText("m")).toBe("new");
    });

    it("a lower directory gets an absolute redirect and its lower contents follow it, moved twice and remounted", async () => {
      const h = await open({
        lowers: [
          [dir("p/a"), file("p/a/f", "from a"), file("p/a/sub/g", "g"), dir("q")],
          [file("p/a/low", "bottom"), file("p/a/sub/h")],
        ],
      });
      const ino = h.stat("p/a").ino;
      h.mv("p/a", "q/b");
      expect(h.upperXattr("q/b", OverlayKey.redirect)?.toString()).toBe("/p/a");
      expect(h.upperListing("p")).toEqual({ names: [], whiteouts: ["a"] });
      expect(h.lookup("p/a")).toBeNull();
      expect(h.list("q/b")).toEqual(["f", "low", "sub"]);
      expect(h.list("q/b/sub")).toEqual(["g", "h"]);
      expect(h.readText("q/b/low")).toBe("bottom");
      h.writeAt("q/b/f", "F", 0);
      h.mv("q/b", "r");
      expect(h.upperXattr("r", OverlayKey.redirect)?.toString()).toBe("/p/a");
      const again = await h.remount();
      expect(again.list("r")).toEqual(["f", "low", "sub"]);
      expect([again.readText("r/f"), again.readText("r/sub/g"), again.stat("r").ino]).toEqual(["From a", "g", ino]);
      expect(again.list("q")).toEqual([]);
    });

    it("an upper-only directory moved onto a whited-out lower name is made opaque", async () => {
      const h = await open({ lowers: [[file("m/sub/old")]] });
      h.rm("m/sub/old");
      h.rmdir("m/sub");
      h.mkdir("n");
      h.writeFile("n/f", "f");
      h.mv("n", "m/sub");
      expect(h.list("m/sub")).toEqual(["f"]);
      expect(h.upperXattr("m/sub", OverlayKey.opaque)?.toString()).toBe("y");
      expect(h.list("")).toEqual(["m"]);
    });

    it("onto an existing file, lower or upper: the destination is replaced", async () => {
      const h = await open({ lowers: [[file("a", "A"), file("b", "B"), file("c", "C")]] });
      h.mv("a", "b");
      h.writeFile("u", "U");
      h.mv("u", "c");
      expect([h.readText("b"), h.readText("c")]).toEqual(["A", "U"]);
      expect(h.list("")).toEqual(["b", "c"]);
      expect(h.upperListing("")).toEqual({ names: ["b", "c"], whiteouts: ["a"] });
    });

    it("onto a directory that is empty in the merged view (its lower entries whited out)", async () => {
      const h = await open({ lowers: [[file("s/f", "F"), file("t/x")]] });
      h.rm("t/x");
      h.mv("s", "t");
      expect(h.list("t")).toEqual(["f"]);
      expect(h.readText("t/f")).toBe("F");
      expect(h.lookup("s")).toBeNull();
      expect(h.lookup("t/x")).toBeNull();
      expect(readdirSync(h.work("work"))).toEqual([]);
    });

    it("errnos: EISDIR, ENOTDIR, ENOTEMPTY, ENOENT; a failed rename changes nothing; never EXDEV", async () => {
      const h = await open({ lowers: [[file("f"), dir("d"), file("d/x"), dir("empty"), file("g")], [dir("full/y")]] });
      const failed = [
        errnoOf(() => h.mv("f", "d")),
        errnoOf(() => h.mv("f", "empty")),
        errnoOf(() => h.mv("d", "f")),
        errnoOf(() => h.mv("empty", "d")),
        errnoOf(() => h.mv("empty", "full")),
        errnoOf(() => h.mv("missing", "x")),
      ];
      expect(failed).toEqual(["EISDIR", "EISDIR", "ENOTDIR", "ENOTEMPTY", "ENOTEMPTY", "ENOENT"]);
      expect(readdirSync(h.upper())).toEqual([]);
      const moved = [
        errnoOf(() => h.mv("d", "d2")),
        errnoOf(() => h.mv("full", "empty")),
        errnoOf(() => h.mv("f", "d2/f")),
        errnoOf(() => h.mv("g", "empty/g")),
      ];
      expect(moved).toEqual(["OK", "OK", "OK", "OK"]);
      expect(h.list("")).toEqual(["d2", "empty"]);
      expect(h.list("empty")).toEqual(["g", "y"]);
    });
  });

  describe.skipIf(unavailable !== null)(`hard links ${suffix}`, () => {
    const scratch = useScratch("unionfs-core-");
    const open = (spec: UnionSpec) => UnionHarness.open(scratch(), { ...spec, options: { whiteout: style } });

    it("link of a lower file copies it up: both names are one inode, nlink 2 through both", async () => {
      const h = await open({ lowers: [[file("a/f", "one"), dir("b")]] });
      const ino = h.stat("a/f").ino;
      h.ln("a/f", "b/g");
      expect([h.stat("a/f").ino, h.stat("b/g").ino]).toEqual([ino, ino]);
      expect([h.stat("a/f").nlink, h.stat("b/g").nlink]).toEqual([2, 2]);
      expect(lstatSync(h.upper("a/f")).ino).toBe(lstatSync(h.upper("b/g")).ino);
      h.writeAt("b/g", "+", 3);
      expect([h.readText("a/f"), h.stat("a/f").size]).toEqual(["one+", 4n]);
      expect(errnoOf(() => h.ln("a", "b/dir-link"))).toBe("EPERM");
    });

    // with user.overlay.* (--whiteout=file) a symlink or special file cannot hold an origin
    // record, so its upper copy has its own st_ino: the new name must still be the source's
    it("link of a lower symlink or fifo gives the source a second name, with or without an origin record", async () => {
      const h = await open({ lowers: [[symlink("s", "target"), fifo("p")]] });
      expect([errnoOf(() => h.ln("s", "t")), errnoOf(() => h.ln("p", "q"))]).toEqual(["OK", "OK"]);
      expect(h.list("")).toEqual(["p", "q", "s", "t"]);
      expect([h.node("t"), h.node("q")]).toEqual([h.node("s"), h.node("p")]);
      expect([h.readlink("t"), h.stat("s").nlink, h.stat("t").ino === h.stat("s").ino]).toEqual(["target", 2, true]);
      expect([h.stat("q").nlink, h.stat("q").ino === h.stat("p").ino]).toEqual([2, true]);
      expect(lstatSync(h.upper("t")).ino).toBe(lstatSync(h.upper("s")).ino);
    });

    it("a lower hard-link pair is copied up once, into work/index: changes through one name show through all", async () => {
      const h = await open({ lowers: [[file("hl1", "one"), hardlink("c/hl2", "hl1"), hardlink("hl3", "hl1")]] });
      const names = ["hl1", "c/hl2", "hl3"];
      const ino = h.stat("hl1").ino;
      const seen = (paths = names) =>
        paths.map((p) => {
          const st = h.stat(p);
          return { p, text: h.readText(p), ino: st.ino, nlink: st.nlink, mode: st.mode & 0o777 };
        });
      expect(seen().map((s) => [s.ino, s.nlink])).toEqual(names.map(() => [ino, 3]));
      h.writeAt("c/hl2", "+two", 3);
      const index = readdirSync(h.work("index"));
      expect(index.length).toBe(1);
      expect(lstatSync(h.upper("c/hl2")).ino).toBe(lstatSync(h.work(`index/${index[0]}`)).ino);
      expect(seen()).toEqual(names.map((p) => ({ p, text: "one+two", ino, nlink: 3, mode: 0o644 })));
      h.chmod("hl1", 0o600);
      expect(seen().map((s) => s.mode)).toEqual([0o600, 0o600, 0o600]);
      h.rm("hl3");
      expect(seen(["hl1", "c/hl2"]).map((s) => [s.text, s.ino, s.nlink])).toEqual([
        ["one+two", ino, 2],
        ["one+two", ino, 2],
      ]);
      const again = await h.remount();
      expect(["hl1", "c/hl2"].map((p) => [again.readText(p), again.stat(p).ino, again.stat(p).nlink])).toEqual([
        ["one+two", ino, 2],
        ["one+two", ino, 2],
      ]);
      expect(again.lookup("hl3")).toBeNull();
    });
  });

  describe.skipIf(unavailable !== null)(`files in use after their name is gone ${suffix}`, () => {
    const scratch = useScratch("unionfs-core-");
    const open = (spec: UnionSpec) => UnionHarness.open(scratch(), { ...spec, options: { whiteout: style } });

    it("a lower file open for reading still reads after unlink", async () => {
      const h = await open({ lowers: [[file("f", "lower data")]] });
      const opened = h.openFile("f", fsc.O_RDONLY);
      h.rm("f");
      expect(h.lookup("f")).toBeNull();
      expect(opened.read(100, 0).toString()).toBe("lower data");
      opened.close();
    });

    it("a file open for writing still reads and writes after unlink, copied up or upper-only", async () => {
      const h = await open({ lowers: [[file("f", "lower data")]] });
      const lower = h.openFile("f", fsc.O_RDWR);
      const fresh = h.create("n");
      fresh.write("abc", 0);
      h.rm("f");
      h.rm("n");
      expect(lower.write("X", 0)).toBe(1);
      expect(fresh.write("d", 3)).toBe(1);
      expect([lower.read(100, 0).toString(), fresh.read(100, 0).toString()]).toEqual(["Xower data", "abcd"]);
      expect(h.upperListing("")).toEqual({ names: [], whiteouts: ["f"] });
      expect(h.list("")).toEqual([]);
    });

    it("a file renamed while open keeps serving its handle, and the new name shows what it writes", async () => {
      const h = await open({ lowers: [[file("f", "lower data")]] });
      const opened = h.openFile("f", fsc.O_RDWR);
      h.mv("f", "g");
      opened.write("Y", 0);
      expect(h.readText("g")).toBe("Yower data");
      expect(opened.read(100, 0).toString()).toBe("Yower data");
    });

    // getattr through the handle reads the open file, not the name (which now holds nothing,
    // or a whiteout)
    it("fstat through the handle of an unlinked file", async () => {
      const h = await open({ lowers: [[file("f", "lower data")]] });
      const opened = h.openFile("f", fsc.O_RDWR);
      h.rm("f");
      expect(opened.stat().size).toBe(10n);
    });

    it("ftruncate through the handle of an unlinked file", async () => {
      const h = await open({ lowers: [[file("f", "lower data")]] });
      const opened = h.openFile("f", fsc.O_RDWR);
      h.rm("f");
      opened.truncate(3);
      expect([opened.stat().size, opened.read(100, 0).toString()]).toEqual([3n, "low"]);
    });
  });
}

describe("--whiteout=file on disk", () => {
  const scratch = useScratch("unionfs-core-");

  // A `.wh.` file for a name of 252–255 bytes would exceed NAME_MAX, so the core refuses to
  // delete or move such a lower name under --whiteout=file. Kernel overlayfs, rootless too,
  // writes a char 0/0 whiteout (any user may since Linux 5.8); an xattr whiteout would also do.
  const long = "n".repeat(255);
  it.fails("unlink of a lower name of 255 bytes [today ENAMETOOLONG: its .wh. name is too long]", async () => {
    const h = await UnionHarness.open(scratch(), { lowers: [[file(long, "x")]] });
    h.rm(long);
    expect(h.list("")).toEqual([]);
  });

  it.fails("rename of a lower name of 255 bytes [today ENAMETOOLONG: its .wh. name is too long]", async () => {
    const h = await UnionHarness.open(scratch(), { lowers: [[file(long, "x")]] });
    h.mv(long, "short");
    expect(h.list("")).toEqual(["short"]);
  });

  // a step that fails after its `.wh.` file was written: the victim is immutable (EPERM)
  const itRoot = it.runIf(process.getuid?.() === 0);
  const immutable = <T>(path: string, fn: () => T): T => {
    execFileSync("chattr", ["+i", path]);
    try {
      return fn();
    } finally {
      execFileSync("chattr", ["-i", path]);
    }
  };

  itRoot("a rename that fails leaves no .wh. entry, which would make the directory opaque", async () => {
    const h = await UnionHarness.open(scratch(), { lowers: [[dir("d"), file("d/keep"), dir("sub")]] });
    h.mkdir("sub/new"); // sub is in the upper now
    expect(immutable(h.upper("sub"), () => errnoOf(() => h.mv("d", "sub/d")))).toBe("EPERM");
    expect(readdirSync(h.upper()).sort()).toEqual(["d", "sub"]);
    const again = await h.remount();
    expect(again.list("d")).toEqual(["keep"]);
  });

  itRoot("an rmdir that fails leaves no .wh. entry next to the directory", async () => {
    const h = await UnionHarness.open(scratch(), { lowers: [[dir("d"), file("d/x")]] });
    h.rm("d/x"); // d is in the upper, holding x's whiteout
    expect(immutable(h.upper("d"), () => errnoOf(() => h.rmdir("d")))).toBe("EPERM");
    expect(readdirSync(h.upper()).sort()).toEqual(["d"]);
    expect(h.list("")).toEqual(["d"]);
  });

  itRoot("a rename of a 255-byte lower directory over an upper whiteout is refused before it moves", async () => {
    // the upper holds a char 0/0 whiteout at "dest", which a directory is exchanged with
    const h = await UnionHarness.open(scratch(), {
      lowers: [[dir(long), file(`${long}/f`), file("dest")]],
      upper: [whiteout("dest")],
    });
    expect(errnoOf(() => h.mv(long, "dest"))).toBe("ENAMETOOLONG");
    expect([h.list(""), h.list(long)]).toEqual([[long], ["f"]]);
    expect(lstatSync(h.upper("dest")).isCharacterDevice()).toBe(true);
  });

  it("writes .wh. files and user.overlay.* only, never trusted.* or devices", async () => {
    const h = await UnionHarness.open(scratch(), {
      lowers: [[dir("d"), file("d/x", "1"), file("gone", "2"), dir("r"), file("r/f")]],
    });
    h.rm("gone");
    h.rm("d/x");
    h.rmdir("d");
    h.mkdir("d");
    h.mv("r", "moved");
    h.chmod("moved/f", 0o600);
    expect(readdirSync(h.upper()).sort()).toEqual([".wh.gone", ".wh.r", "d", "moved"]);
    expect(lgetxattr(h.upper("d"), "user.overlay.opaque")?.toString()).toBe("y");
    expect(lgetxattr(h.upper("moved"), "user.overlay.redirect")?.toString()).toBe("/r");
    expect(lgetxattr(h.upper("moved/f"), "user.overlay.origin")).not.toBeNull();
    for (const path of ["d", "moved", "moved/f"]) {
      expect(
        llistxattr(h.upper(path)).filter((n) => !n.startsWith("user.overlay.")),
        path,
      ).toEqual([]);
    }
    expect(h.list("")).toEqual(["d", "moved"]);
  });
});

describe("new objects", () => {
  const scratch = useScratch("unionfs-core-");

  it("belong to the caller, and take the group (and, for directories, the setgid bit) of a setgid parent", async () => {
    const me = processCaller();
    const other = mayChown();
    const group = other ? 4242 : me.gid;
    const h = await UnionHarness.open(scratch(), {
      lowers: [[dir("pub", 0o1777), dir("grp", { mode: 0o2777, gid: group })]],
    });
    h.caller = other ? { ...me, uid: 1000, gid: 1000 } : me;
    h.create("pub/mine", 0o640).close();
    h.mkdir("grp/sub", 0o750);
    const mine = h.stat("pub/mine");
    expect([mine.uid, mine.gid, mine.mode & 0o7777]).toEqual([h.caller.uid, h.caller.gid, 0o640]);
    const sub = h.stat("grp/sub");
    expect([sub.uid, sub.gid, sub.mode & 0o7777]).toEqual([h.caller.uid, group, 0o2750]);
  });

  // a daemon that may not chown (rootless) cannot give a new object to another owner: the
  // create fails, and what it built must not stay behind under the daemon's own ids
  it("a create that cannot give the object its owner fails and leaves nothing", async () => {
    const h = await UnionHarness.open(scratch(), {
      lowers: [[file("below")]],
      prepare: ({ upper }) => {
        if (mayChown()) chownSync(upper, NOBODY, NOBODY);
      },
    });
    const me = processCaller();
    h.caller = mayChown() ? { ...me, uid: 0, gid: 0 } : { ...me, uid: me.uid + 1, gid: me.gid + 1 };
    const results = withoutChown(() => [
      errnoOf(() => h.create("f").close()),
      errnoOf(() => h.mkdir("d")),
      errnoOf(() => h.symlink("target", "l")),
      errnoOf(() => h.mknod("p", fsc.S_IFIFO | 0o644)),
    ]);
    expect(results).toEqual(["EPERM", "EPERM", "EPERM", "EPERM"]);
    expect([readdirSync(h.upper()), h.list("")]).toEqual([[], ["below"]]);
  });
});

const NOBODY = 65534;

/** Runs `step` without CAP_CHOWN: as uid/gid 65534 (effective only) when this process has it. */
function withoutChown<T>(step: () => T): T {
  if (!mayChown()) return step();
  if (process.seteuid === undefined || process.setegid === undefined) throw new Error("no seteuid here");
  process.setegid(NOBODY);
  process.seteuid(NOBODY);
  try {
    return step();
  } finally {
    process.seteuid(0);
    process.setegid(0);
  }
}
