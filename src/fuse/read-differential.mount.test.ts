/**
 * Differential read tests: each logical layer stack is mounted read-only by kernel overlayfs
 * (the oracle, in its own encodings) and by unionfs (in the encodings under test), and the two
 * snapshots must agree on every object: type, mode, owner, size, content hash, link target,
 * device number, xattrs, nlink, mtime, st_ino, and every readdir entry's d_ino and d_type.
 * What is not compared is listed, with reasons, in IGNORED (src/testing/snapshot.ts). Every
 * stack runs in each filesystem layout (src/testing/fs-layout.ts): lowers on one filesystem, and
 * lowers alternating between two, where st_ino is overlayfs's xino numbering; and once per
 * transport (src/testing/transports.ts).
 */
import { lstat, readFile, stat } from "node:fs/promises";
import { join } from "node:path";
import { expect, it } from "vitest";
import { errorCode } from "../errors.js";
import { differential } from "../testing/differential.js";
import { device, dir, type Entry, fifo, file, hardlink, opaque, symlink, whiteout, xattr } from "../testing/fixture.js";
import { type FsLayout, selectedLayouts } from "../testing/fs-layout.js";
import { describeAsRoot } from "../testing/root-gate.js";
import { useScratch } from "../testing/scratch.js";
import { selectedTransports } from "../testing/transports.js";

/** What following `rel` through the mount gives: the object's type, size and content, or errno. */
async function follow(mnt: string, rel: string): Promise<string> {
  try {
    const st = await stat(join(mnt, rel));
    const content = st.isFile() ? (await readFile(join(mnt, rel))).toString("utf8") : "";
    return `${st.isDirectory() ? "dir" : st.isFile() ? "file" : "other"} size=${st.size} ${JSON.stringify(content)}`;
  } catch (e) {
    return errorCode(e) ?? String(e);
  }
}

for (const transport of selectedTransports()) {
  for (const layout of selectedLayouts()) {
    describeAsRoot(`read-only union, ${transport}, ${layout.name}: kernel overlayfs vs unionfs`, () => {
      readTests(transport, layout);
    });
  }
}

function readTests(transport: string, layout: FsLayout): void {
  const scratch = useScratch();
  const differentialIn = (layers: readonly (readonly Entry[])[]) =>
    differential(scratch(), layers, { layout, transport });

  it("merges four lowers: topmost wins, metadata, xattrs, devices and inode numbers match", async () => {
    const r = await differentialIn([
      [
        file("shadowed", "from L0", { mode: 0o600, uid: 1000, gid: 1001, mtime: 1234567890.123456 }),
        dir("merged", { mode: 0o750, uid: 7, gid: 8, mtime: 1500000000 }),
        file("merged/top", "top"),
        file("setuid", "x", 0o4755),
        dir("sticky", 0o1777),
        file("noperm", "secret", 0o000),
        symlink("rel-link", "merged/top"),
        symlink("dangling", "no/such/target"),
        xattr("shadowed", "user.color", "red"),
        xattr("merged", "trusted.note", "dir xattr"),
      ],
      [
        file("shadowed", "from L1", 0o644),
        dir("merged", 0o700),
        file("merged/l1", "l1"),
        fifo("merged/pipe", 0o640),
        device("merged/null", "char", 1, 3, { mode: 0o666 }),
        device("merged/loop", "block", 7, 0),
        file("linked", "two names"),
        hardlink("merged/linked-too", "linked"),
        dir("empty"),
      ],
      [file("shadowed", "from L2"), dir("only-l2/deeper/still"), file("only-l2/deeper/still/f", "deep")],
      [
        file("shadowed", "from L3"),
        dir("merged", 0o755),
        file("merged/bottom", "bottom", { mode: 0o640, mtime: 1000000000.5 }),
        file("merged/top", "hidden by L0"),
        symlink("abs-link", "/etc/hostname"),
        file("bin", Buffer.from([0, 1, 2, 255, 254, 0])),
        xattr("bin", "user.bin", Buffer.from([0, 255, 10])),
      ],
    ]);
    expect(r.stack.shared).toBe(true);
    expect(r.differences).toEqual([]);
    expect(r.unionfsConsistency).toEqual([]);
    expect(r.unionfs.nodes.get("shadowed")).toMatchObject({ ino: "L0:shadowed", mode: "600", uid: 1000 });
    // every number the oracle reports names a layer object: the snapshot's xino rule is the kernel's
    const unnamed = [...r.kernel.nodes].filter(([, n]) => !("ino" in n) || !/^L[0-3]:/.test(n.ino));
    expect(unnamed).toEqual([]);
  });

  it("nested opaque directories hide exactly the layers below them", async () => {
    const r = await differentialIn([
      [dir("a"), file("a/top"), opaque("a/b"), file("a/b/top"), opaque("n"), dir("n/m"), file("n/m/top")],
      [
        file("a/l1"),
        file("a/b/l1-hidden"),
        opaque("a/c"),
        file("a/c/l1"),
        dir("n/m"),
        file("n/m/hidden"),
        dir("p"),
        opaque("p/q"),
        file("p/q/l1"),
      ],
      [
        file("a/l2"),
        file("a/b/l2-hidden"),
        file("a/c/l2-hidden"),
        opaque("a/d"),
        file("a/d/l2"),
        opaque("p"),
        dir("p/q"),
        file("p/q/l2-hidden"),
        file("p/l2"),
      ],
      [file("a/l3"), file("a/d/l3-hidden"), file("p/l3-hidden"), dir("p/q"), file("p/q/l3-hidden")],
    ]);
    expect(r.differences).toEqual([]);
    expect(r.unionfsConsistency).toEqual([]);
    const visible = [...r.unionfs.nodes.keys()];
    expect(visible.filter((p) => p.includes("hidden"))).toEqual([]);
    expect(visible).toEqual(expect.arrayContaining(["a/l3", "a/d/l2", "a/c/l1", "p/q/l1", "p/l2"]));
  });

  it("a whiteout in a middle layer hides what is below it, not what is above", async () => {
    const r = await differentialIn([
      [dir("g"), file("g/new", "above the whiteout"), file("back", "re-created above")],
      [whiteout("g"), whiteout("f"), whiteout("d/x"), whiteout("back"), file("d/m")],
      [dir("g"), file("g/old", "hidden"), file("f", "hidden"), file("d/x", "hidden"), file("d/y"), file("back")],
      [file("g/older", "hidden"), file("d/z")],
    ]);
    expect(r.differences).toEqual([]);
    expect(r.unionfsConsistency).toEqual([]);
    expect([...r.unionfs.nodes.keys()]).toEqual(["", "back", "d", "d/m", "d/y", "d/z", "g", "g/new"]);
  });

  it("a file over a directory and a directory over a file: the topmost decides", async () => {
    const r = await differentialIn([
      [file("x", "file over dir"), dir("y"), file("y/top"), symlink("z", "y")],
      [dir("x"), file("x/hidden"), file("y", "file between dirs"), dir("z"), file("z/hidden")],
      [dir("y"), file("y/hidden-below-file"), file("w", "file under dir")],
      [dir("w"), file("w/hidden")],
    ]);
    expect(r.differences).toEqual([]);
    expect(r.unionfsConsistency).toEqual([]);
    expect([...r.unionfs.nodes.keys()]).toEqual(["", "w", "x", "y", "y/top", "z"]);
  });

  it("a lower symlink etc -> /etc beneath a real etc never shows host files", async () => {
    const r = await differentialIn([
      [dir("etc"), file("etc/layer-hostname", "mine"), symlink("root", "/")],
      [symlink("etc", "/etc"), dir("root"), file("root/hidden")],
      [dir("etc"), file("etc/hidden-below-symlink")],
    ]);
    expect(r.differences).toEqual([]);
    expect(r.unionfsConsistency).toEqual([]);
    expect([...r.unionfs.nodes.keys()]).toEqual(["", "etc", "etc/layer-hostname", "root"]);
    for (const host of ["etc/passwd", "etc/hostname", "etc/os-release"]) {
      await expect(lstat(join(r.stack.unionfs.mountpoint, host))).rejects.toMatchObject({ code: "ENOENT" });
    }
  });

  it("a symlink as a middle component: layers are never resolved through it", async () => {
    const r = await differentialIn([
      [dir("a/b"), file("a/b/c", "top"), symlink("link", "d"), symlink("up", "..")],
      [symlink("a", "/usr"), dir("d"), file("d/f", "through the link"), symlink("s", "/usr/share")],
      [dir("a/b"), file("a/b/hidden"), dir("a/share"), dir("s/doc"), file("s/doc/f", "under a middle symlink")],
    ]);
    expect(r.differences).toEqual([]);
    expect(r.unionfsConsistency).toEqual([]);
    const probes = ["link/f", "a/b/c", "a/share", "a/b/hidden", "s", "link/nope", "up"];
    const kernel = await Promise.all(probes.map((p) => follow(r.stack.kernel.mountpoint, p)));
    const unionfs = await Promise.all(probes.map((p) => follow(r.stack.unionfs.mountpoint, p)));
    expect(unionfs).toEqual(kernel);
    expect(await follow(r.stack.unionfs.mountpoint, "link/f")).toBe('file size=16 "through the link"');
  });

  it("names with spaces, newlines, tabs, quotes and UTF-8", async () => {
    const names = [
      "with space",
      " leading",
      "trailing ",
      "new\nline",
      "tab\there",
      "日本語",
      "caf\u00e9",
      "cafe\u0301",
      "🦄 unicorn",
      "-dash",
      "back\\slash",
      "colon:name",
      "quote\"'",
      "glob*?[x]",
      "..dots",
      "a".repeat(251),
      `${"é".repeat(125)}a`,
    ];
    const r = await differentialIn([
      [dir("sub/new\nline"), file("sub/new\nline/top"), whiteout(" leading"), whiteout("new\nline")],
      [...names.map((n) => file(n, n)), ...names.map((n) => dir(`sub/${n}`))],
      [file("sub/new\nline/deep"), file(`sub/${"a".repeat(251)}/f`), file("sub/tab\there/f")],
    ]);
    expect(r.differences).toEqual([]);
    expect(r.unionfsConsistency).toEqual([]);
    expect(r.unionfs.nodes.has("new\nline")).toBe(false);
    expect(r.unionfs.nodes.has("sub/new\nline/deep")).toBe(true);
    expect(r.unionfs.nodes.get("日本語")).toMatchObject({ type: "file", size: "9" });
    expect(r.unionfs.nodes.get("cafe\u0301")).toMatchObject({ sha256: expect.any(String) });
  });

  it("names of exactly 255 bytes, in every layer and as directories", async () => {
    const names = ["a".repeat(255), `${"é".repeat(127)}a`, "日".repeat(85), "b".repeat(252)];
    for (const n of names.slice(0, 3)) expect(Buffer.byteLength(n)).toBe(255);
    const long = "d".repeat(255);
    const r = await differentialIn([
      [dir(long), file(`${long}/${"f".repeat(255)}`, "long"), whiteout("c".repeat(255))],
      [...names.map((n) => file(n, n)), dir(`${long}/x`), file("c".repeat(255))],
      [...names.map((n) => dir(`sub/${n}`)), file(`sub/${names[0]}/f`)],
    ]);
    expect(r.differences).toEqual([]);
    expect(r.unionfsConsistency).toEqual([]);
  });
}
