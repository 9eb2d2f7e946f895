/**
 * Operations that bring a new name into the merged view: create, mknod, mkdir, symlink, link.
 *
 * New objects exist only in the upper (allocate-on-demand). Where the upper holds a whiteout
 * for the name, the object is built in the work dir and swapped with the whiteout in one
 * rename, so the lower object never shows through; a directory made there is opaque, as
 * overlayfs makes it. New objects belong to the caller (the group of a setgid parent, which a
 * new directory also inherits the setgid bit from). A `.wh.`-prefixed name is refused: it is
 * union metadata on disk (format/whiteout.ts).
 */
import {
  chmodSync,
  closeSync,
  fchmodSync,
  fchownSync,
  constants as fsc,
  lchownSync,
  linkSync,
  lstatSync,
  mkdirSync,
  openSync,
  rmdirSync,
  rmSync,
  symlinkSync,
  unlinkSync,
} from "node:fs";
import { FsError } from "../errors.js";
import { refuseMetaName } from "../format/whiteout.js";
import { checkName } from "../path/name.js";
import type { PathLike } from "../sys/libc.js";
import { mknod } from "../sys/mknod.js";
import type { Caller } from "./caller.js";
import { type ByteName, entryPath, realPath } from "./layer.js";
import { isDirNode, type UnionNode } from "./node-table.js";
import type { UnionContext } from "./union-context.js";

const S_ISGID = 0o2000;

interface Owner {
  uid: number;
  gid: number;
  /** the parent is setgid: new directories inherit the bit */
  setgidDir: boolean;
}

/** Where a new object is built. */
interface Place {
  /** the parent's upper directory */
  dir: Buffer;
  /** the object replaces a whiteout of a lower name */
  overWhiteout: boolean;
  owner: Owner;
}

/**
 * How a new object is built at `path` (its name, or a temp in the work dir): `make` creates it
 * and leaves nothing at `path` when it throws; `finish` gives it its owner and mode.
 */
interface Build {
  make(path: PathLike, place: Place): void;
  finish?(path: PathLike, place: Place): void;
}

/** Places a new object at parent/name and returns its node. */
function placeNew(u: UnionContext, parent: UnionNode, name: ByteName, caller: Caller, build: Build): UnionNode {
  buildNew(u, parent, name, caller, build);
  const node = u.find(parent, name);
  if (node === null) throw new FsError("EIO", "create", name, "new object vanished");
  return node;
}

/**
 * Builds a new object at parent/name in the upper; when that fails, nothing stays behind.
 * Over a whiteout it is built in the work dir and swapped in; elsewhere it is built in place
 * and removed again if `finish` fails. Building every object in the work dir would cost each
 * create a rename to guard against a failure that is rare (a chown a rootless daemon may not
 * make); the half-built object is never seen through the mount, as the kernel holds the
 * parent's lock across the create.
 */
function buildNew(u: UnionContext, parent: UnionNode, name: ByteName, caller: Caller, build: Build): void {
  checkName(name, "create");
  refuseMetaName(name, "create");
  if (!isDirNode(parent)) throw new FsError("ENOTDIR", "create", parent.path);
  if (u.find(parent, name) !== null) throw new FsError("EEXIST", "create", name);
  const { writer, copyUp } = u.side();
  const dir = realPath(copyUp.ensureUpper(parent));
  const owner = ownerIn(dir, caller);
  if (writer.hasWhiteout(dir, name)) {
    const place = { dir, overWhiteout: true, owner };
    const tmp = writer.work.tempPath();
    try {
      build.make(tmp, place);
      build.finish?.(tmp, place);
      writer.installOverWhiteout(tmp, dir, name);
    } catch (e) {
      rmSync(tmp, { recursive: true, force: true });
      throw e;
    }
    return;
  }
  const place = { dir, overWhiteout: false, owner };
  const path = entryPath(dir, name);
  build.make(path, place);
  try {
    build.finish?.(path, place);
  } catch (e) {
    removeBuilt(path);
    throw e;
  }
}

/** Removes an object `make` just created (a directory is still empty). */
function removeBuilt(path: Buffer): void {
  try {
    if (lstatSync(path).isDirectory()) rmdirSync(path);
    else unlinkSync(path);
  } catch {
    // the create's own error is the one to report
  }
}

function ownerIn(dir: Buffer, caller: Caller): Owner {
  const st = lstatSync(dir);
  const setgidDir = (st.mode & S_ISGID) !== 0;
  return { uid: caller.uid, gid: setgidDir ? st.gid : caller.gid, setgidDir };
}

/**
 * create(2) with O_CREAT|O_EXCL semantics; the new file is returned open (fd) for read and
 * write, with `openFlags` (O_APPEND) added.
 */
export function createFile(
  u: UnionContext,
  parent: UnionNode,
  name: ByteName,
  mode: number,
  openFlags: number,
  caller: Caller,
): { node: UnionNode; fd: number } {
  let fd: number | undefined;
  try {
    const node = placeNew(u, parent, name, caller, {
      make: (path) => {
        fd = openSync(path, fsc.O_CREAT | fsc.O_EXCL | fsc.O_RDWR | fsc.O_NOFOLLOW | openFlags, 0o600);
      },
      finish: (_path, { owner }) => {
        if (fd === undefined) throw new FsError("EIO", "create", name);
        // chown before chmod: chown clears set-id bits
        fchownSync(fd, owner.uid, owner.gid);
        fchmodSync(fd, mode & 0o7777);
      },
    });
    if (fd === undefined) throw new FsError("EIO", "create", name);
    return { node, fd };
  } catch (e) {
    if (fd !== undefined) closeSync(fd);
    throw e;
  }
}

export function makeNod(
  u: UnionContext,
  parent: UnionNode,
  name: ByteName,
  mode: number,
  rdev: number,
  caller: Caller,
) {
  return placeNew(u, parent, name, caller, {
    make: (path) => mknod(path, mode, rdev),
    finish: (path, { owner }) => {
      lchownSync(path, owner.uid, owner.gid);
      chmodSync(path, mode & 0o7777);
    },
  });
}

export function makeDir(u: UnionContext, parent: UnionNode, name: ByteName, mode: number, caller: Caller) {
  const { writer } = u.side();
  return placeNew(u, parent, name, caller, {
    make: (path) => mkdirSync(path, 0o700),
    finish: (path, { overWhiteout, owner }) => {
      if (overWhiteout) writer.setOpaque(path);
      lchownSync(path, owner.uid, owner.gid);
      chmodSync(path, (mode & 0o7777) | (owner.setgidDir ? S_ISGID : 0));
    },
  });
}

/** symlink(2); the target is bytes as well (a byte string), stored as given. */
export function makeSymlink(u: UnionContext, parent: UnionNode, name: ByteName, target: ByteName, caller: Caller) {
  return placeNew(u, parent, name, caller, {
    make: (path) => symlinkSync(Buffer.from(target, "latin1"), path),
    finish: (path, { owner }) => lchownSync(path, owner.uid, owner.gid),
  });
}

/**
 * link(2): the source is copied up first, so both names share one upper inode, and the new name
 * is given to the source's node. It is not looked up again: the name leads to the source's
 * node by st_ino only when the copy carries an origin record, which a symlink or special file
 * cannot hold with user.overlay.* xattrs, nor any object when the lower has no file handles.
 * Nothing can fail once the name exists, so a failed link leaves no name behind.
 */
export function makeLink(u: UnionContext, source: UnionNode, parent: UnionNode, name: ByteName, caller: Caller) {
  if (isDirNode(source)) throw new FsError("EPERM", "link", source.path);
  const { copyUp, writer } = u.side();
  const upper = copyUp.ensureUpper(source);
  buildNew(u, parent, name, caller, {
    make: (path, { dir }) => {
      // the new name may carry a lower origin: the kernel then reads its d_ino from the origin
      writer.setImpure(dir);
      linkSync(realPath(upper), path);
    },
  });
  u.table.link(source, parent, name, true);
  u.table.sharesNames(source);
  return source;
}
