import { execFileSync } from "node:child_process";
import { createHash } from "node:crypto";
import { linkSync, readFileSync, writeFileSync } from "node:fs";
import { join } from "node:path";
import { Readable, Writable } from "node:stream";
import { describe, expect, it } from "vitest";
import { lsetxattr } from "../sys/xattr.js";
import {
  apply,
  DEFAULT_MTIME,
  device,
  dir,
  fifo,
  file,
  hardlink,
  OPAQUE_FORMATS,
  opaque,
  symlink,
  WHITEOUT_FORMATS,
  whiteout,
  xattr,
} from "../testing/fixture.js";
import { changesetBytes, rawPaxRecords, readTar, type TarItem } from "../testing/layer-tar.js";
import { nestedRedirectStack } from "../testing/redirect-layers.js";
import { useScratch } from "../testing/scratch.js";
import { writeChangeset } from "./changeset.js";
import { isStoreError } from "./store-error.js";
import { unpackLayer } from "./unpack.js";

const isRoot = process.getuid?.() === 0;
const itRoot = it.runIf(isRoot);

const names = (items: TarItem[]) => items.map((i) => i.header.name);
const byName = (items: TarItem[], name: string): TarItem => {
  const item = items.find((i) => i.header.name === name);
  if (item === undefined) throw new Error(`no entry ${name} in ${names(items).join(", ")}`);
  return item;
};

/** What containerd's ChangeWriter (BuildKit) writes for every whiteout; ours for the marker too. */
const META = { type: "file", mode: 0, uid: 0, gid: 0, size: 0, uname: "", gname: "" };
const metaHeader = (item: TarItem) => {
  const { type, mode, uid, gid, size, uname, gname } = item.header;
  return { type, mode, uid, gid, size, uname, gname, mtime: item.header.mtime.getTime() };
};

describe("writeChangeset", () => {
  const scratch = useScratch("unionfs-changeset-");

  itRoot("writes every object type with normalized, deterministic headers", async () => {
    const upper = scratch().path("upper");
    apply(upper, [
      dir("d", { mode: 0o2750, uid: 1000, gid: 1001, mtime: DEFAULT_MTIME + 0.75 }),
      file("d/f", "hello\n", { mode: 0o4755, uid: 7, gid: 8 }),
      symlink("d/l", "../target"),
      fifo("p", 0o640),
      device("null", "char", 1, 3),
      device("loop", "block", 7, 0),
    ]);
    makeSocket(join(upper, "sock"));
    const { bytes, diffId, size } = await changesetBytes(upper);

    expect(diffId).toBe(`sha256:${createHash("sha256").update(bytes).digest("hex")}`);
    expect(size).toBe(bytes.length);
    expect(size % 512).toBe(0);
    const items = await readTar(bytes);
    expect(names(items)).toEqual(["d/", "d/f", "d/l", "loop", "null", "p"]); // no socket, no root
    const d = byName(items, "d/").header;
    expect(d).toMatchObject({ type: "directory", mode: 0o2750, uid: 1000, gid: 1001, uname: "", gname: "" });
    expect(d.mtime.getTime()).toBe(DEFAULT_MTIME * 1000); // truncated, not rounded
    const f = byName(items, "d/f");
    expect(f.header).toMatchObject({ type: "file", mode: 0o4755, uid: 7, gid: 8, size: 6 });
    expect(f.data.toString()).toBe("hello\n");
    expect(byName(items, "d/l").header).toMatchObject({ type: "symlink", linkname: "../target", mode: 0o777 });
    expect(byName(items, "p").header).toMatchObject({ type: "fifo", mode: 0o640 });
    expect(byName(items, "null").header).toMatchObject({ type: "character-device", devmajor: 1, devminor: 3 });
    expect(byName(items, "loop").header).toMatchObject({ type: "block-device", devmajor: 7, devminor: 0 });
    for (const item of items) expect(item.header.pax ?? {}).not.toHaveProperty("atime");
  });

  itRoot.each(WHITEOUT_FORMATS)("turns a %s whiteout into an empty .wh. file with a fixed header", async (format) => {
    const upper = scratch().path("upper");
    apply(upper, [dir("d"), whiteout("d/gone", format), file("d/kept", "k")]);
    const items = await readTar((await changesetBytes(upper)).bytes);
    expect(names(items)).toEqual(["d/", "d/.wh.gone", "d/kept"]);
    expect(metaHeader(byName(items, "d/.wh.gone"))).toEqual({ ...META, mtime: 0 });
  });

  itRoot.each(OPAQUE_FORMATS)("writes a %s opaque directory's marker right after the directory", async (format) => {
    const upper = scratch().path("upper");
    // "+a" and "-b" sort before ".wh..wh..opq": the marker still comes first
    apply(upper, [opaque("o", format), file("o/+a"), file("o/-b"), file("o/z"), whiteout("o/w", "wh-file")]);
    const items = await readTar((await changesetBytes(upper)).bytes);
    expect(names(items)).toEqual(["o/", "o/.wh..wh..opq", "o/+a", "o/-b", "o/.wh.w", "o/z"]);
    expect(metaHeader(byName(items, "o/.wh..wh..opq"))).toEqual({ ...META, mtime: 0 });
  });

  it("reads an AUFS directory next to its own whiteout as opaque, and drops shadowed whiteouts", async () => {
    const upper = scratch().path("upper");
    apply(upper, [dir("d"), file("d/x"), file(".wh.d"), file("f"), file(".wh.f")]);
    const items = await readTar((await changesetBytes(upper)).bytes);
    expect(names(items)).toEqual(["d/", "d/.wh..wh..opq", "d/x", "f"]);
  });

  it("orders entries depth first, siblings bytewise by entry name", async () => {
    const upper = scratch().path("upper");
    apply(upper, [file("a-b"), dir("a"), file("a/c"), file("B"), file("a.b"), whiteout("a/.x", "wh-file")]);
    const items = await readTar((await changesetBytes(upper)).bytes);
    expect(names(items)).toEqual(["B", "a/", "a/.wh..x", "a/c", "a-b", "a.b"]);
  });

  itRoot("keeps xattrs as SCHILY.xattr records and never the overlay-private ones", async () => {
    const upper = scratch().path("upper");
    const capability = Buffer.from([1, 0, 0, 2, 0x20, 0, 0, 0, 0, 0, 0, 0, 0xff, 0xfe, 0, 0, 0, 0, 0, 0]);
    apply(upper, [
      dir("d", { xattrs: { "user.dir": "on a dir", "trusted.overlay.impure": "y" } }),
      file("d/f", "x"),
      xattr("d/f", "user.k", "v"),
      xattr("d/f", "security.capability", capability),
      xattr("d/f", "trusted.overlay.origin", "handle"),
      xattr("d/f", "user.overlay.origin", "handle"),
      xattr("d/f", "trusted.other", "t"),
    ]);
    const { bytes } = await changesetBytes(upper);
    const items = await readTar(bytes);
    const pax = (name: string) => (byName(items, name).header.pax ?? {}) as Record<string, string>;
    expect(Object.keys(pax("d/f")).sort()).toEqual([
      "SCHILY.xattr.security.capability",
      "SCHILY.xattr.trusted.other",
      "SCHILY.xattr.user.k",
    ]);
    expect(pax("d/f")["SCHILY.xattr.user.k"]).toBe("v");
    expect(Object.keys(pax("d/"))).toEqual(["SCHILY.xattr.user.dir"]);
    expect(rawPaxRecords(bytes, "d/f").get("SCHILY.xattr.security.capability")).toEqual(capability);
    expect(bytes.includes("overlay.")).toBe(false);
  });

  it("stores hard links once: the first path in order is the file, later ones link to it", async () => {
    const upper = scratch().path("upper");
    apply(upper, [file("b/x", "data"), hardlink("a", "b/x"), hardlink("c/y", "b/x"), file("lonely", "1")]);
    // nlink > 1 with the other name outside the tree (as with overlayfs's index dir)
    linkSync(join(upper, "lonely"), scratch().path("outside"));
    const items = await readTar((await changesetBytes(upper)).bytes);
    expect(names(items)).toEqual(["a", "b/", "b/x", "c/", "c/y", "lonely"]);
    expect(byName(items, "a").header).toMatchObject({ type: "file", size: 4 });
    expect(byName(items, "a").data.toString()).toBe("data");
    expect(byName(items, "b/x").header).toMatchObject({ type: "link", linkname: "a", size: 0 });
    expect(byName(items, "c/y").header).toMatchObject({ type: "link", linkname: "a" });
    expect(byName(items, "lonely").header).toMatchObject({ type: "file", size: 1 });
  });

  itRoot("never links whiteouts, even when overlayfs shares one whiteout inode", async () => {
    const upper = scratch().path("upper");
    apply(upper, [whiteout("w1")]);
    linkSync(join(upper, "w1"), join(upper, "w2"));
    const items = await readTar((await changesetBytes(upper)).bytes);
    expect(names(items)).toEqual([".wh.w1", ".wh.w2"]);
    expect(items.map((i) => i.header.type)).toEqual(["file", "file"]);
  });

  it("writes long, non-ASCII and non-UTF-8 names and long link targets", async () => {
    const upper = scratch().path("upper");
    const a = "a".repeat(90);
    const b = "b".repeat(90);
    const c = "c".repeat(150);
    const target = `../${"t".repeat(200)}`;
    apply(upper, [file(`${a}/${b}`, "split"), file(c, "pax"), file("grüße", "utf8"), symlink("l", target)]);
    const binary = Buffer.concat([Buffer.from(`${upper}/raw-`), Buffer.from([0xff, 0xfe])]);
    writeFileSync(binary, "bytes");
    const { bytes } = await changesetBytes(upper);
    const items = await readTar(bytes);
    expect(byName(items, `${a}/${b}`).data.toString()).toBe("split");
    expect(byName(items, c).data.toString()).toBe("pax");
    expect(byName(items, "grüße").data.toString()).toBe("utf8");
    expect(byName(items, "l").header.linkname).toBe(target);
    // the PAX path record carries the name's bytes unchanged
    const rawName = Buffer.concat([Buffer.from("raw-"), Buffer.from([0xff, 0xfe])]);
    expect(bytes.includes(Buffer.concat([Buffer.from(" path="), rawName, Buffer.from("\n")]))).toBe(true);
  });

  itRoot("uses PAX records for owners beyond ustar's 7 octal digits", async () => {
    const upper = scratch().path("upper");
    apply(upper, [file("f", "x", { uid: 3_000_000, gid: 4_000_000 })]);
    const items = await readTar((await changesetBytes(upper)).bytes);
    expect(byName(items, "f").header.pax).toMatchObject({ uid: "3000000", gid: "4000000" });
  });

  it("streams big files through a slow consumer intact", async () => {
    const upper = scratch().path("upper");
    const big = Buffer.alloc(3 * 1024 * 1024 + 123);
    for (let i = 0; i < big.length; i += 4096) big.writeUInt32LE(i, i);
    apply(upper, [file("big", big), file("small", "s")]);
    const slow = await changesetBytes(upper, [], 1024);
    const fast = await changesetBytes(upper);
    expect(slow.diffId).toBe(fast.diffId);
    const items = await readTar(slow.bytes);
    expect(byName(items, "big").data.equals(big)).toBe(true);
  });

  itRoot("is deterministic: twice, and after reading files and touching atime and ctime", async () => {
    const upper = scratch().path("upper");
    apply(upper, [dir("d", { mtime: DEFAULT_MTIME + 0.5 }), file("d/f", "x"), whiteout("w"), opaque("o")]);
    const first = await changesetBytes(upper);
    expect((await changesetBytes(upper)).diffId).toBe(first.diffId);
    readFileSync(join(upper, "d/f"));
    execFileSync("touch", ["-a", "-d", "2001-01-01", join(upper, "d/f"), join(upper, "d")]);
    execFileSync("chmod", ["0644", join(upper, "d/f")]); // same mode: only ctime moves
    expect((await changesetBytes(upper)).diffId).toBe(first.diffId);
    execFileSync("touch", ["-m", "-d", "2001-01-01", join(upper, "d/f")]);
    expect((await changesetBytes(upper)).diffId).not.toBe(first.diffId);
  });

  it("gives docker's empty-layer DiffID for an empty upper (just the end-of-archive blocks)", async () => {
    const upper = scratch().mkdir("upper");
    const { bytes, diffId } = await changesetBytes(upper);
    expect(bytes.equals(Buffer.alloc(1024))).toBe(true);
    expect(diffId).toBe("sha256:5f70bf18a086007016e948b04aed3b82103a36bea41755b6cddfaf10ace3c6ef");
  });

  it("fails with the output's own error instead of hanging", async () => {
    const upper = scratch().path("upper");
    apply(upper, [file("big", Buffer.alloc(300_000)), file("small")]);
    const out = new Writable({
      write(_chunk, _enc, done) {
        done(new Error("disk full"));
      },
    });
    await expect(writeChangeset(upper, [], out)).rejects.toThrow("disk full");
  });

  itRoot.each(["chardev", "file"] as const)(
    "round-trips through unpackLayer (%s whiteouts) byte for byte",
    async (style) => {
      const s = scratch();
      const upper = s.path("upper");
      apply(upper, [
        dir("d", { mode: 0o1777, uid: 5, gid: 6, mtime: DEFAULT_MTIME + 0.9, xattrs: { "user.d": "1" } }),
        file("d/f", "x", { mode: 0o6755, xattrs: { "user.k": "v", "user.bin": Buffer.from([0xff, 0, 0xfe]) } }),
        hardlink("d/g", "d/f"),
        symlink(`d/${"l".repeat(120)}`, "t".repeat(150)),
        fifo("p"),
        device("null", "char", 1, 3),
        whiteout("w1", "chardev"),
        whiteout("w2", "wh-file"),
        whiteout("x/w3", "xattr"),
        whiteout("y/w4", "user-xattr"),
        opaque("o1", "trusted"),
        file("o1/in"),
        opaque("o2", "user"),
        opaque("o3", "wh-file"),
        file(`${"n".repeat(99)}/${"m".repeat(99)}/grüße`, "deep"),
      ]);
      const first = await changesetBytes(upper);
      await unpackLayer(Readable.from([first.bytes]), s.path("layer"), { whiteout: style });
      const again = await changesetBytes(s.path("layer"));
      expect(again.diffId).toBe(first.diffId);
    },
  );

  itRoot("refuses metacopy files, whose data is not in the upper", async () => {
    const upper = scratch().path("upper");
    apply(upper, [file("f", "")]);
    lsetxattr(join(upper, "f"), "trusted.overlay.metacopy", Buffer.alloc(0));
    await expect(changesetBytes(upper)).rejects.toSatisfy((e) => isStoreError(e, "unsupported"));
  });

  itRoot("writes a redirected directory opaque with its full merged content", async () => {
    const s = scratch();
    const [upper, top, bottom] = [s.path("upper"), s.path("top"), s.path("bottom")];
    apply(bottom, [
      dir("src"),
      file("src/a", "bottom a"),
      file("src/b", "bottom b"),
      dir("src/sub"),
      file("src/sub/s"),
    ]);
    apply(bottom, [file("src/gone-below", "hidden by top")]);
    apply(top, [dir("src"), file("src/a", "top a"), whiteout("src/gone-below"), opaque("src/sub"), file("src/sub/t")]);
    apply(upper, [
      dir("new", { xattrs: { "trusted.overlay.redirect": "/src" } }),
      file("new/mine", "m"),
      whiteout("new/b"),
      whiteout("src"),
      dir("rel"),
      dir("rel/moved", { xattrs: { "trusted.overlay.redirect": "sub" } }),
      dir("rel2", { xattrs: { "trusted.overlay.redirect": "/src" } }),
      dir("rel2/renamed", { xattrs: { "trusted.overlay.redirect": "sub" } }),
    ]);
    const items = await readTar((await changesetBytes(upper, [top, bottom])).bytes);
    expect(names(items)).toEqual(
      [
        "new/",
        "new/.wh..wh..opq",
        "new/a",
        "new/mine",
        "new/sub/",
        "new/sub/t",
        "rel/",
        "rel/moved/", // "sub" relative to rel's own lower path: nothing there
        "rel/moved/.wh..wh..opq",
        "rel2/",
        "rel2/.wh..wh..opq",
        "rel2/a",
        "rel2/b",
        "rel2/renamed/", // "sub" relative to /src: the opaque sub of top
        "rel2/renamed/t",
        "rel2/sub/",
        "rel2/sub/t",
        ".wh.src",
      ].sort(depthFirst),
    );
    expect(byName(items, "new/a").data.toString()).toBe("top a");
    expect(byName(items, "rel2/b").data.toString()).toBe("bottom b");
  });

  itRoot(
    "follows a lower layer's relative redirect inside a directory it reached through an absolute one",
    async () => {
      const { upper, lowers } = nestedRedirectStack(scratch().root);
      const items = await readTar((await changesetBytes(upper, lowers)).bytes);
      expect(names(items)).toEqual(
        ["x/", "x/.wh.c", "x/d/", "x/d/.wh..wh..opq", "x/d/kept", "x/d/new"].sort(depthFirst),
      );
    },
  );
});

/** Tar order for these fixtures: depth first, bytewise within a directory. */
function depthFirst(x: string, y: string): number {
  const a = x.split("/");
  const b = y.split("/");
  for (let i = 0; i < Math.min(a.length, b.length); i++) {
    if (a[i] !== b[i]) {
      if (a[i] === "") return -1; // the directory entry ("d/") before its children
      if (b[i] === "") return 1;
      return Buffer.compare(Buffer.from(a[i] ?? ""), Buffer.from(b[i] ?? ""));
    }
  }
  return a.length - b.length;
}

/** A unix socket file that stays after its creator exits (python: bind, then exit). */
function makeSocket(path: string): void {
  execFileSync("python3", ["-c", "import socket,sys; socket.socket(socket.AF_UNIX).bind(sys.argv[1])", path]);
}
