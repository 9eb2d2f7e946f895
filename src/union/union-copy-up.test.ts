/**
 * Copy-up in the union core, in-process over temp dirs (no FUSE, no root): what the upper copy
 * keeps (content, mode, owner as far as this process may give files away, times to the
 * nanosecond, user xattrs), parents first, the origin record, st_ino across copy-up and a new
 * core, O_TRUNC copying no data, and reads never copying. write-semantics.mount.test.ts checks
 * the same on a real mount.
 */
import { constants as fsc, lstatSync, readdirSync, readFileSync, readlinkSync } from "node:fs";
import { describe, expect, it } from "vitest";
import { OverlayKey } from "../format/overlay-xattr.js";
import { mayChown } from "../sys/privilege.js";
import { lutimens } from "../sys/utimens.js";
import { lgetxattr, llistxattr } from "../sys/xattr.js";
import { dir, fifo, file, symlink } from "../testing/fixture.js";
import { useScratch } from "../testing/scratch.js";
import { errnoOf, processCaller, UnionHarness } from "../testing/union-harness.js";
import { DataCopyNeeded } from "./copy-up.js";

/** Times with every nanosecond digit in use, planted on the lower objects. */
const T_DIR = 1_400_000_000_123_456_789n;
const T_SUB = 1_450_000_000_987_654_321n;
const T_FILE = 1_500_000_000_111_222_333n;

/** Owners for the lower objects: others' ids where this process may give files away, else its own. */
const me = processCaller();
const OWNER = mayChown() ? { uid: 1234, gid: 5678 } : { uid: me.uid, gid: me.gid };
const DIR_OWNER = mayChown() ? { uid: 7, gid: 8 } : OWNER;

function metadata(path: string) {
  const st = lstatSync(path, { bigint: true });
  return { mode: Number(st.mode), uid: Number(st.uid), gid: Number(st.gid), mtimeNs: st.mtimeNs };
}

describe("copy-up", () => {
  const scratch = useScratch("unionfs-core-");

  it("keeps content, mode with set-id bits, owner, times to the ns and user xattrs; parents first, with theirs", async () => {
    const h = await UnionHarness.open(scratch(), {
      lowers: [
        [
          dir("a", { mode: 0o750, ...DIR_OWNER, xattrs: { "user.p": "parent" } }),
          dir("a/b", { mode: 0o1777, ...DIR_OWNER }),
          file("a/b/f", "data", { mode: 0o6755, ...OWNER, xattrs: { "user.tag": "kept" } }),
        ],
      ],
      prepare: ({ lowers: [l] }) => {
        lutimens(`${l}/a`, T_DIR, T_DIR);
        lutimens(`${l}/a/b`, T_SUB, T_SUB);
        lutimens(`${l}/a/b/f`, T_FILE, T_FILE);
      },
    });
    const ino = h.stat("a/b/f").ino;
    h.setxattr("a/b/f", "user.extra", "x");
    for (const path of ["a", "a/b", "a/b/f"]) expect(metadata(h.upper(path))).toEqual(metadata(h.lower(0, path)));
    expect(metadata(h.upper("a/b/f"))).toEqual({
      mode: fsc.S_IFREG | 0o6755,
      ...OWNER,
      mtimeNs: T_FILE,
    });
    expect(lstatSync(h.upper("a/b/f"), { bigint: true }).atimeNs).toBe(T_FILE);
    expect(readFileSync(h.upper("a/b/f"), "utf8")).toBe("data");
    expect(lgetxattr(h.upper("a/b/f"), "user.tag")?.toString()).toBe("kept");
    expect(lgetxattr(h.upper("a/b/f"), "user.extra")?.toString()).toBe("x");
    expect(lgetxattr(h.upper("a"), "user.p")?.toString()).toBe("parent");
    // the union shows the same, and the work dir holds nothing left over
    expect([h.stat("a/b").mtimeNs, h.stat("a/b/f").mtimeNs, h.stat("a/b/f").ino]).toEqual([T_SUB, T_FILE, ino]);
    expect(h.listxattr("a/b/f").sort()).toEqual(["user.extra", "user.tag"]);
    expect(readdirSync(h.work("work"))).toEqual([]);
  });

  // overlayfs with userxattr ignores the EPERM that user.* xattrs meet on symlinks and special
  // files when it records the origin (fs/overlayfs/copy_up.c, ovl_set_origin_fh: "Ignore -EPERM
  // from setting user.* on symlink/special"): under --whiteout=file a chown, utimens, rename or
  // link of a lower symlink, fifo or device must still copy it up.
  for (const [what, entry, change] of [
    ["symlink", symlink("x", "target/of/link"), (h: UnionHarness) => h.chown("x", me.uid, me.gid)],
    ["fifo", fifo("x", 0o640), (h: UnionHarness) => h.chmod("x", 0o600)],
    ["renamed symlink", symlink("x", "t"), (h: UnionHarness) => h.mv("x", "y")],
  ] as const) {
    it(`a lower ${what} copies up as what it is, without the origin record user.* cannot hold`, async () => {
      const h = await UnionHarness.open(scratch(), { lowers: [[entry]] });
      change(h);
      const name = what === "renamed symlink" ? "y" : "x";
      const st = lstatSync(h.upper(name));
      expect(what === "fifo" ? [st.isFIFO(), st.mode & 0o7777] : [st.isSymbolicLink(), h.readlink(name)]).toEqual(
        what === "fifo" ? [true, 0o600] : [true, readlinkSync(h.lower(0, "x"))],
      );
      expect(readdirSync(h.work("work"))).toEqual([]);
    });
  }

  it("records the lower origin in user.overlay.origin; st_ino stays the origin's, in a new core too", async () => {
    const h = await UnionHarness.open(scratch(), { lowers: [[file("d/f", "x"), file("d/g", "y")]] });
    const before = ["d", "d/f", "d/g"].map((p) => h.stat(p).ino);
    expect(before[1]).toBe(lstatSync(h.lower(0, "d/f"), { bigint: true }).ino);
    h.writeAt("d/f", "z", 1);
    h.mv("d/g", "d/moved");
    for (const path of ["d", "d/f", "d/moved"]) {
      expect(h.upperXattr(path, OverlayKey.origin), path).not.toBeNull();
      expect(
        llistxattr(h.upper(path)).filter((n) => n.startsWith("trusted.")),
        path,
      ).toEqual([]);
    }
    expect(lstatSync(h.upper("d/f")).ino).not.toBe(Number(before[1]));
    expect(["d", "d/f", "d/moved"].map((p) => h.stat(p).ino)).toEqual(before);
    const again = await h.remount();
    expect(["d", "d/f", "d/moved"].map((p) => again.stat(p).ino)).toEqual(before);
    expect(again.readText("d/f")).toBe("xz");
  });

  it("open with O_TRUNC, and truncate to 0, copy metadata only: no data is copied", async () => {
    // staged data copies refuse to copy inline (DataCopyNeeded): whatever succeeds copied no data
    const h = await UnionHarness.open(scratch(), {
      lowers: [[file("f", "lower data", { mode: 0o640, xattrs: { "user.k": "v" } }), file("g", "more data", 0o600)]],
      options: { dataCopy: "staged" },
    });
    expect(() => h.openFile("f", fsc.O_WRONLY)).toThrow(DataCopyNeeded);
    expect(() => h.truncate("g", 3)).toThrow(DataCopyNeeded);
    h.openFile("f", fsc.O_WRONLY | fsc.O_TRUNC).close();
    h.truncate("g", 0);
    for (const [name, mode] of [
      ["f", 0o640],
      ["g", 0o600],
    ] as const) {
      const st = lstatSync(h.upper(name));
      expect([name, st.size, st.mode & 0o7777]).toEqual([name, 0, mode]);
    }
    expect(lgetxattr(h.upper("f"), "user.k")?.toString()).toBe("v");
    expect(h.readText("f")).toBe("");
  });

  it("a staged copy-up copies the data off the request, then the request completes", async () => {
    const h = await UnionHarness.open(scratch(), {
      lowers: [[file("f", "lower data")]],
      options: { dataCopy: "staged" },
    });
    await h.fs.stageCopyUp(h.node("f"));
    h.writeAt("f", "L", 0);
    expect(h.readText("f")).toBe("Lower data");
    expect(readFileSync(h.upper("f"), "utf8")).toBe("Lower data");
  });

  it("a staged copy is found by the node a repeated request makes after the first was evicted", async () => {
    const others = Array.from({ length: 100 }, (_, i) => file(`g${i}`));
    const h = await UnionHarness.open(scratch(), {
      lowers: [[file("f", "lower data"), ...others]],
      options: { dataCopy: "staged", cachedNodes: 1 },
    });
    const first = h.node("f");
    const release = await h.fs.stageCopyUp(first);
    for (let i = 0; i < 100; i++) h.stat(`g${i}`); // f's node, held by no one, is evicted
    expect(h.node("f").id).not.toBe(first.id);
    h.writeAt("f", "L", 0);
    release();
    expect(readFileSync(h.upper("f"), "utf8")).toBe("Lower data");
    expect(readdirSync(h.work("work"))).toEqual([]);
  });

  it("a staged copy no copy-up took is removed by its release", async () => {
    const h = await UnionHarness.open(scratch(), {
      lowers: [[file("f", "lower data")]],
      options: { dataCopy: "staged" },
    });
    const release = await h.fs.stageCopyUp(h.node("f"));
    expect(readdirSync(h.work("work")).length).toBe(1);
    h.rm("f");
    release();
    expect(readdirSync(h.work("work"))).toEqual([]);
  });

  it("never copies on open for reading, read, stat, readdir, readlink, xattr reads or access", async () => {
    const h = await UnionHarness.open(scratch(), {
      lowers: [[file("d/f", "x", { xattrs: { "user.k": "v" } }), symlink("d/l", "f")]],
    });
    const opened = h.openFile("d/f", fsc.O_RDONLY);
    expect(opened.read(10, 0).toString()).toBe("x");
    opened.close();
    h.stat("d/f");
    h.list("d");
    h.readlink("d/l");
    h.getxattr("d/f", "user.k");
    h.listxattr("d/f");
    h.access("d/f", fsc.R_OK | fsc.W_OK);
    expect(readdirSync(h.upper())).toEqual([]);
  });

  it("hides overlay-private xattrs and refuses to set or remove them", async () => {
    const h = await UnionHarness.open(scratch(), { lowers: [[dir("d"), file("d/f")]] });
    h.mv("d", "e");
    expect(h.upperXattr("e", OverlayKey.redirect)?.toString()).toBe("/d");
    expect(h.listxattr("e")).toEqual([]);
    expect(h.getxattr("e", "user.overlay.redirect")).toBeNull();
    expect(errnoOf(() => h.setxattr("e/f", "user.overlay.opaque", "y"))).toBe("EPERM");
    expect(errnoOf(() => h.setxattr("e/f", "trusted.overlay.opaque", "y"))).toBe("EPERM");
    expect(errnoOf(() => h.removexattr("e", "user.overlay.redirect"))).toBe("ENODATA");
    expect(h.upperXattr("e", OverlayKey.redirect)?.toString()).toBe("/d");
  });

  it("utimens sets whole milliseconds on the upper copy", async () => {
    const h = await UnionHarness.open(scratch(), { lowers: [[file("f")]] });
    h.utimens("f", 1_039_822_573_066_000_000n, 1_451_978_095_469_000_000n);
    expect([h.stat("f").atimeNs, h.stat("f").mtimeNs]).toEqual([
      1_039_822_573_066_000_000n,
      1_451_978_095_469_000_000n,
    ]);
  });

  it("one setattr applies owner, mode, size and times together, in the order the kernel does", async () => {
    const h = await UnionHarness.open(scratch(), { lowers: [[file("f", "0123456789", 0o6755)]] });
    const node = h.fs.lookup(h.fs.table.root, "f");
    if (node === null) throw new Error("no f");
    const attr = h.fs.setattr(node, { uid: me.uid, gid: me.gid, mode: 0o4700, size: 4, mtime: T_FILE });
    // the mode is set after the owner (chown clears set-id bits), the mtime after the truncation
    expect([attr.mode & 0o7777, attr.size, attr.mtimeNs]).toEqual([0o4700, 4n, T_FILE]);
    expect(h.readText("f")).toBe("0123");
  });

  it("setattr's times keep their nanoseconds", async () => {
    const h = await UnionHarness.open(scratch(), { lowers: [[file("f")]] });
    h.utimens("f", T_FILE, T_FILE);
    expect(h.stat("f").mtimeNs).toBe(T_FILE);
  });
});
