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
  rmSync,
  symlinkSync,
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

/** Builds the object at `path`; `overWhiteout` says it replaces a whiteout of a lower name. */
type Build = (path: PathLike, overWhiteout: boolean, owner: Owner) => void;

/** Places a new object at parent/name and returns its node. */
function placeNew(u: UnionContext, parent: UnionNode, name: ByteName, caller: Caller, build: Build): UnionNode {
  checkName(name, "create");
  refuseMetaName(name, "create");
  if (!isDirNode(parent)) throw new FsError("ENOTDIR", "create", parent.path);
  if (u.find(parent, name) !== null) throw new FsError("EEXIST", "create", name);
  const { writer, copyUp } = u.side();
  const dir = realPath(copyUp.ensureUpper(parent));
  const owner = ownerIn(dir, caller);
  if (writer.hasWhiteout(dir, name)) {
    const tmp = writer.work.tempPath();
    try {
      build(tmp, true, owner);
      writer.installOverWhiteout(tmp, dir, name);
    } catch (e) {
      rmSync(tmp, { recursive: true, force: true });
      throw e;
    }
  } else {
    build(entryPath(dir, name), false, owner);
  }
  const node = u.find(parent, name);
  if (node === null) throw new FsError("EIO", "create", name, "new object vanished");
  return node;
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
    const node = placeNew(u, parent, name, caller, (path, _over, owner) => {
      fd = openSync(path, fsc.O_CREAT | fsc.O_EXCL | fsc.O_RDWR | fsc.O_NOFOLLOW | openFlags, 0o600);
      // chown before chmod: chown clears set-id bits
      fchownSync(fd, owner.uid, owner.gid);
      fchmodSync(fd, mode & 0o7777);
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
  return placeNew(u, parent, name, caller, (path, _over, owner) => {
    mknod(path, mode, rdev);
    lchownSync(path, owner.uid, owner.gid);
    chmodSync(path, mode & 0o7777);
  });
}

export function makeDir(u: UnionContext, parent: UnionNode, name: ByteName, mode: number, caller: Caller) {
  const { writer } = u.side();
  return placeNew(u, parent, name, caller, (path, overWhiteout, owner) => {
    mkdirSync(path, 0o700);
    if (overWhiteout) writer.setOpaque(path);
    lchownSync(path, owner.uid, owner.gid);
    chmodSync(path, (mode & 0o7777) | (owner.setgidDir ? S_ISGID : 0));
  });
}

/** symlink(2); the target is bytes as well (a byte string), stored as given. */
export function makeSymlink(u: UnionContext, parent: UnionNode, name: ByteName, target: ByteName, caller: Caller) {
  return placeNew(u, parent, name, caller, (path, _over, owner) => {
    symlinkSync(Buffer.from(target, "latin1"), path);
    lchownSync(path, owner.uid, owner.gid);
  });
}

/**
 * link(2): the source is copied up first, so both names share one upper inode; the new name is
 * a name of the source's node.
 */
export function makeLink(u: UnionContext, source: UnionNode, parent: UnionNode, name: ByteName, caller: Caller) {
  if (isDirNode(source)) throw new FsError("EPERM", "link", source.path);
  const { copyUp, writer } = u.side();
  const upper = copyUp.ensureUpper(source);
  u.table.sharesNames(source);
  const node = placeNew(u, parent, name, caller, (path) => {
    linkSync(realPath(upper), path);
  });
  // the new name may carry a lower origin: the kernel then reads its d_ino from the origin
  writer.setImpure(realPath(copyUp.ensureUpper(parent)));
  if (node !== source) throw new FsError("EIO", "link", name, "the new name leads to another node");
  return node;
}
