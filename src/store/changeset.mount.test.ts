/**
 * writeChangeset against kernel overlayfs, the oracle: uppers the kernel wrote (redirects,
 * whiteouts, opaque directories, copy-ups) become layer tars that, unpacked and mounted over the
 * same lowers, show the same tree; and committing the unpacked layer again gives the same bytes.
 * Every mount is registered with the test's Scratch, which unmounts in afterEach whatever happens.
 */
import { execFileSync } from "node:child_process";
import {
  chmodSync,
  constants,
  lchownSync,
  linkSync,
  mkdirSync,
  renameSync,
  rmSync,
  symlinkSync,
  unlinkSync,
  writeFileSync,
} from "node:fs";
import { Readable } from "node:stream";
import { describe, expect, it } from "vitest";
import { mknod } from "../sys/mknod.js";
import { MNT_DETACH, MS_RDONLY, mount, umount2 } from "../sys/mount.js";
import { lgetxattr, lsetxattr } from "../sys/xattr.js";
import { apply, device, dir, fifo, file, hardlink, symlink } from "../testing/fixture.js";
import { changesetBytes, readTar, treeLines } from "../testing/layer-tar.js";
import { mountsUnder, type Scratch, useScratch } from "../testing/scratch.js";
import { unpackLayer } from "./unpack.js";
import { diffUpper } from "./upper-diff.js";

/** Mounts kernel overlayfs; returns its unmount (also run at cleanup if the test did not). */
function overlay(s: Scratch, options: string, flags = 0): { mnt: string; unmount: () => void } {
  const mnt = s.mkdir(`mnt-${Math.random().toString(36).slice(2, 8)}`);
  mount("overlay", mnt, "overlay", flags, options);
  let done = false;
  const unmount = () => {
    if (done) return;
    done = true;
    try {
      umount2(mnt, 0);
    } catch {
      umount2(mnt, MNT_DETACH);
    }
  };
  s.onCleanup(unmount);
  return { mnt, unmount };
}

/** Lets the kernel write an upper: mounts lower+upper with redirects on, runs `ops`, unmounts. */
function kernelUpper(s: Scratch, lower: string, ops: (mnt: string) => void): string {
  const upper = s.mkdir("upper");
  const work = s.mkdir("work");
  const { mnt, unmount } = overlay(s, `lowerdir=${lower},upperdir=${upper},workdir=${work},redirect_dir=on`);
  try {
    ops(mnt);
  } finally {
    unmount();
  }
  return upper;
}

async function unpack(bytes: Buffer, dest: string, whiteout: "chardev" | "file"): Promise<string> {
  await unpackLayer(Readable.from([bytes]), dest, { whiteout });
  return dest;
}

describe.runIf(process.getuid?.() === 0)("writeChangeset on kernel overlayfs uppers", () => {
  const scratch = useScratch("unionfs-changeset-mount-");

  it("writes a directory renamed through the mount opaque with all of its content", async () => {
    const s = scratch();
    const lower = s.path("lower");
    apply(lower, [file("d/f", "f"), file("d/sub/g", "g"), file("k/x", "x"), dir("n")]);
    const upper = kernelUpper(s, lower, (mnt) => {
      renameSync(`${mnt}/d`, `${mnt}/e`); // same parent: relative redirect
      renameSync(`${mnt}/k`, `${mnt}/n/k2`); // elsewhere: absolute redirect
      writeFileSync(`${mnt}/n/k2/y`, "y");
      unlinkSync(`${mnt}/e/f`);
    });
    expect(lgetxattr(`${upper}/e`, "trusted.overlay.redirect")?.toString()).toBe("d");
    expect(lgetxattr(`${upper}/n/k2`, "trusted.overlay.redirect")?.toString()).toBe("/k");
    const items = await readTar((await changesetBytes(upper, [lower])).bytes);
    expect(items.map((i) => i.header.name)).toEqual([
      ".wh.d",
      ".wh.k",
      "e/",
      "e/.wh..wh..opq",
      "e/sub/",
      "e/sub/g",
      "n/",
      "n/k2/",
      "n/k2/.wh..wh..opq",
      "n/k2/x",
      "n/k2/y",
    ]);
    expect((await diffUpper(upper, [lower])).map((c) => `${c.kind} ${c.path}`)).toEqual([
      "D /d",
      "A /e",
      "A /e/sub",
      "A /e/sub/g",
      "D /k",
      "C /n",
      "A /n/k2",
      "A /n/k2/x",
      "A /n/k2/y",
    ]);
  });

  it("applied over the lowers, shows what the kernel shows; re-committed, gives the same bytes", async () => {
    const s = scratch();
    const lower = s.path("lower");
    apply(lower, [
      file("etc/passwd", "root:x:0:0\n"),
      file("etc/shadow", "secret", 0o600),
      file("var/cache/a/b", "cached"),
      file("opt/app/old.txt", "old"),
      file("opt/app/lib/x.so", "elf"),
      file("home/user/.rc", "rc", { uid: 1000, gid: 1000, xattrs: { "user.tag": "t" } }),
      file("usr/share/doc/readme", "doc"),
      file("bin/tool", "#!/bin/sh\n", 0o755),
      hardlink("bin/tool-alias", "bin/tool"),
      symlink("bin/sh", "tool"),
      fifo("run/fifo"),
      device("dev/null", "char", 1, 3),
      dir("srv"),
    ]);
    const upper = kernelUpper(s, lower, (mnt) => {
      writeFileSync(`${mnt}/etc/passwd`, "root:x:0:0\nme:x:1000:1000\n");
      lchownSync(`${mnt}/etc/passwd`, 1000, 1000);
      lsetxattr(`${mnt}/etc/passwd`, "user.note", Buffer.from("edited"));
      chmodSync(`${mnt}/etc`, 0o750);
      unlinkSync(`${mnt}/etc/shadow`);
      rmSync(`${mnt}/var/cache`, { recursive: true });
      renameSync(`${mnt}/opt/app`, `${mnt}/srv/app2`);
      writeFileSync(`${mnt}/srv/app2/new.txt`, "new");
      unlinkSync(`${mnt}/srv/app2/old.txt`);
      renameSync(`${mnt}/home/user`, `${mnt}/home/user2`);
      rmSync(`${mnt}/usr/share/doc`, { recursive: true });
      mkdirSync(`${mnt}/usr/share/doc`);
      writeFileSync(`${mnt}/usr/share/doc/README`, "fresh");
      chmodSync(`${mnt}/bin/tool`, 0o4755);
      linkSync(`${mnt}/bin/tool`, `${mnt}/bin/tool2`);
      symlinkSync("../etc/passwd", `${mnt}/newlink`);
      mknod(`${mnt}/fifo2`, constants.S_IFIFO | 0o600, 0);
      mkdirSync(`${mnt}/new/deep/er`, { recursive: true });
      writeFileSync(`${mnt}/new/deep/er/file`, Buffer.alloc(200_000, 7));
    });
    const committed = await changesetBytes(upper, [lower]);

    // Re-commit: the layer as stored (both whiteout styles) gives back the same tar.
    const layer = await unpack(committed.bytes, s.path("layer"), "chardev");
    expect((await changesetBytes(layer)).diffId).toBe(committed.diffId);
    const fileStyle = await unpack(committed.bytes, s.path("layer-file-style"), "file");
    expect((await changesetBytes(fileStyle)).diffId).toBe(committed.diffId);

    // The same tree: the kernel over upper + lower vs the kernel over unpacked layer + lower.
    const work = s.mkdir("work2");
    const original = overlay(s, `lowerdir=${lower},upperdir=${upper},workdir=${work},redirect_dir=on`);
    const applied = overlay(s, `lowerdir=${layer}:${lower}`, MS_RDONLY);
    const expected = await treeLines(original.mnt);
    expect(await treeLines(applied.mnt)).toEqual(expected);
    expect(expected).toContain(`/srv/app2/lib/x.so file 3 ${sha256("elf")} 644 0:0 1600000000`);
    expect(expected.some((l) => l.startsWith("/opt/app "))).toBe(false);
    original.unmount();
    applied.unmount();
    expect(mountsUnder(s.root)).toEqual([]);
  });
});

function sha256(text: string): string {
  return execFileSync("sha256sum", { input: text }).toString().split(" ")[0] ?? "";
}
