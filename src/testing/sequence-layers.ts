/**
 * The lower layers every differential write sequence starts from (topmost first): nested and
 * merged directories, a whiteout and an opaque directory in the middle layer, a directory over a
 * file and a file over a directory, symlinks, xattrs, owners, modes, and one lower hard-link pair
 * (hl1 / c/hl2, for the hard-link index; every other lower file has one name). All of it in the
 * kernel's encodings, so kernel overlayfs and unionfs mount the very same directories.
 */
import { dir, type Entry, file, hardlink, opaque, symlink, whiteout, xattr } from "./fixture.js";
import type { GeneratorHints } from "./random-ops.js";
import { Rng } from "./rng.js";

/** Mtimes planted by the fixture, besides DEFAULT_MTIME. */
export const FIXTURE_MTIMES = [1_234_567_890];

/** Topmost first. Lower files have one name except hl1 / c/hl2 (the hard-link index path). */
export function sequenceLayers(bigSeed: number): Entry[][] {
  const big = new Rng(bigSeed).bytes(70_000);
  const l0: Entry[] = [
    dir("dof"),
    file("dof/inner", "dir over a file of L2\n"),
    file("a/f1", "a/f1 from L0, hides L2's\n"),
    xattr("a/f1", "user.color", "red"),
    dir("e"),
    dir("e2", { mode: 0o700, uid: 1234, gid: 1234 }),
    symlink("sl", "top-file"),
    dir("b"),
    file("b/z", "bz\n"),
  ];
  const l1: Entry[] = [
    whiteout("a/gone"),
    whiteout("wtop"),
    opaque("o"),
    file("o/new", "o/new from L1\n"),
    dir("a", 0o750),
    xattr("a", "user.dir", "L1 a"),
    file("a/f2", "a/f2 from L1\n", { mode: 0o640, mtime: FIXTURE_MTIMES[0] }),
    file("a/sub/h", "h\n"),
    file("fod", "file over a dir of L2\n"),
    file("c/deep/file", "cfile\n"),
    file("hl1", "hard linked in L1\n"),
    hardlink("c/hl2", "hl1"),
  ];
  const l2: Entry[] = [
    file("top-file", "bottom top-file\n"),
    file("a/f1", "a/f1 from L2\n"),
    file("a/gone", "whited out by L1\n"),
    file("a/sub/g", "g\n"),
    symlink("a/ln", "f1"),
    file("b/x", "bx\n", { mode: 0o600, uid: 1000, gid: 1000 }),
    xattr("b/x", "user.color", "blue"),
    file("b/y", "by\n", 0o755),
    file("o/hidden", "hidden by the opaque o/ of L1\n"),
    file("dof", "file under a dir of L0\n"),
    file("fod/inner", "under a file of L1\n"),
    file("wtop", "whited out by L1\n"),
    file("big", big),
    file("deep/er/est/leaf", "leaf\n"),
  ];
  return [l0, l1, l2];
}

export const GENERATOR_HINTS: GeneratorHints = {
  ghosts: ["a/gone", "wtop", "o/hidden", "fod/inner"],
  freshNames: ["n1", "n2", "n3", "f1", "sub", "x y"],
  xattrNames: ["user.color", "user.k1", "user.k2"],
};
