/**
 * Checks of the mount-test harness itself (src/testing): a comparison that always agreed, or a
 * cleanup that leaked mounts, would make every other mount test worthless.
 */
import { existsSync } from "node:fs";
import { expect, it } from "vitest";
import { mount } from "../sys/mount.js";
import { apply, dir, file, symlink, whiteout } from "../testing/fixture.js";
import { mountOverlay, mountUnionfs } from "../testing/mounts.js";
import { describeAsRoot } from "../testing/root-gate.js";
import { mountsUnder, Scratch, useScratch } from "../testing/scratch.js";
import { compareSnapshots, direntConsistency, snapshot } from "../testing/snapshot.js";
import { selectedTransports } from "../testing/transports.js";

for (const transport of selectedTransports()) {
  describeAsRoot(`mount-test harness, ${transport}`, () => {
    harnessTests(transport);
  });
}

function harnessTests(transport: string): void {
  const scratch = useScratch();

  it("the comparison reports each kind of difference, one line each", async () => {
    const s = scratch();
    const a = s.mkdir("a");
    const b = s.mkdir("b");
    apply(a, [file("same", "x"), file("mode", "x", 0o644), file("content", "one"), symlink("l", "t1"), dir("d")]);
    apply(b, [file("same", "x"), file("mode", "x", 0o600), file("content", "two"), symlink("l", "t2"), file("d")]);
    apply(b, [file("extra"), whiteout("gone")]);
    const empty = s.mkdir("empty");
    const kernel = await mountOverlay(s, { lowers: [a, empty] }, s.mkdir("kmnt"));
    const unionfs = await mountUnionfs(s, { lowers: [b, empty] }, s.mkdir("umnt"), { transport });
    const differences = compareSnapshots(
      await snapshot(kernel.mountpoint, [a, empty]),
      await snapshot(unionfs.mountpoint, [b, empty]),
    );
    expect(differences).toEqual([
      expect.stringMatching(/^content: sha256 kernel="\w+…\[64 bytes\]" unionfs="\w+…\[64 bytes\]"$/),
      'd: mode kernel="755" unionfs="644"',
      "d: nlink kernel=2 unionfs=1",
      expect.stringMatching(/^d: sha256 kernel=\(none\) unionfs="e3b0c442/),
      'd: type kernel="dir" unionfs="file"',
      "extra: only in unionfs",
      'l: target kernel="t1" unionfs="t2"',
      'mode: mode kernel="644" unionfs="600"',
      'readdir /: d kernel={"ino":"L0:d","type":"dir"} unionfs={"ino":"L0:d","type":"file"}',
      'readdir /: extra kernel=(none) unionfs={"ino":"L0:extra","type":"file"}',
      "readdir d: only in kernel",
    ]);
  });

  it("cleanup detaches mounts a test left behind, then removes the directory", async () => {
    const s = new Scratch();
    const inner = s.mkdir("a/inner");
    mount("tmpfs", s.path("a"), "tmpfs", 0, "size=1m");
    mount("tmpfs", s.mkdir("a/inner"), "tmpfs", 0, "size=1m");
    expect(inner).toBe(s.path("a/inner"));
    expect(mountsUnder(s.root)).toEqual([s.path("a"), s.path("a/inner")]);
    await expect(s.cleanup()).rejects.toThrow(/mounts left behind and detached/);
    expect(mountsUnder(s.root)).toEqual([]);
    expect(existsSync(s.root)).toBe(false);
  });

  it("a snapshot's own d_ino/d_type check catches a listing that disagrees with lstat", async () => {
    const s = scratch();
    const a = s.mkdir("a");
    apply(a, [file("f"), dir("d")]);
    const kernel = await mountOverlay(s, { lowers: [a, s.mkdir("empty")] }, s.mkdir("kmnt"));
    const snap = await snapshot(kernel.mountpoint, [a]);
    expect(direntConsistency(snap)).toEqual([]);
    const root = snap.listings.get("");
    if (!Array.isArray(root)) throw new Error("root listing missing");
    snap.listings.set(
      "",
      root.map((e) => (e.name === "f" ? { ...e, ino: "L0:d" } : e)),
    );
    expect(direntConsistency(snap)).toEqual(['/: "f" d_ino=L0:d st_ino=L0:f']);
  });
}
