/**
 * Operations that bring a new name into the merged view: create, mknod, mkdir, symlink, link.
 *
 * New objects exist only in the upper (allocate-on-demand). Where the upper holds a whiteout
 * for the name, the object is built in the work dir and swapped with the whiteout in one
 * rename, so the lower object never shows through; a directory made there is opaque, as
 * overlayfs makes it. New objects belong to the caller (the group of a setgid parent, which a
 * new directory also inherits the setgid bit from).
 *
 * The metadata system calls here are synchronous, as the probes are (see probe.ts): each costs
 * a few µs where a thread-pool round trip costs tens. The open stays asynchronous because its
 * FileHandle serves the data reads and writes.
 */
import {
  chmodSync,
  fchmodSync,
  fchownSync,
  constants as fsc,
  lchownSync,
  linkSync,
  lstatSync,
  mkdirSync,
  symlinkSync,
} from "node:fs";
import { type FileHandle, open, rm } from "node:fs/promises";
import { join } from "node:path";
import { FsError } from "../errors.js";
import { checkName } from "../path/name.js";
import { mknod } from "../sys/mknod.js";
import type { Caller } from "./caller.js";
import { realPath } from "./layer.js";
import { isDirNode, type UnionNode } from "./node-table.js";
import type { UnionFs } from "./union-fs.js";

const S_ISGID = 0o2000;

interface Owner {
  uid: number;
  gid: number;
  /** the parent is setgid: new directories inherit the bit */
  setgidDir: boolean;
}

/** Builds the object at `path`; `overWhiteout` says it replaces a whiteout of a lower name. */
type Build = (path: string, overWhiteout: boolean, owner: Owner) => Promise<void>;

/** Places a new object at parent/name and returns its node. */
async function placeNew(u: UnionFs, parent: UnionNode, name: string, caller: Caller, build: Build): Promise<UnionNode> {
  checkName(name, "create");
  if (!isDirNode(parent)) throw new FsError("ENOTDIR", "create", parent.path);
  if ((await u.lookup(parent, name)) !== null) throw new FsError("EEXIST", "create", name);
  const { writer, copyUp } = u.side();
  const dir = realPath(await copyUp.ensureUpper(parent));
  const owner = ownerIn(dir, caller);
  if (await writer.hasWhiteout(dir, name)) {
    const tmp = writer.work.tempPath();
    try {
      await build(tmp, true, owner);
      await writer.installOverWhiteout(tmp, dir, name);
    } catch (e) {
      await rm(tmp, { recursive: true, force: true });
      throw e;
    }
  } else {
    await build(join(dir, name), false, owner);
  }
  const node = await u.lookup(parent, name);
  if (node === null) throw new FsError("EIO", "create", name, "new object vanished");
  return node;
}

function ownerIn(dir: string, caller: Caller): Owner {
  const st = lstatSync(dir);
  const setgidDir = (st.mode & S_ISGID) !== 0;
  return { uid: caller.uid, gid: setgidDir ? st.gid : caller.gid, setgidDir };
}

/** create(2) with O_CREAT|O_EXCL semantics; the new file is returned open for read and write. */
export async function createFile(
  u: UnionFs,
  parent: UnionNode,
  name: string,
  mode: number,
  caller: Caller,
): Promise<{ node: UnionNode; file: FileHandle }> {
  let file: FileHandle | undefined;
  try {
    const node = await placeNew(u, parent, name, caller, async (path, _over, owner) => {
      file = await open(path, fsc.O_CREAT | fsc.O_EXCL | fsc.O_RDWR | fsc.O_NOFOLLOW, 0o600);
      // chown before chmod: chown clears set-id bits
      fchownSync(file.fd, owner.uid, owner.gid);
      fchmodSync(file.fd, mode & 0o7777);
    });
    if (file === undefined) throw new FsError("EIO", "create", name);
    return { node, file };
  } catch (e) {
    await file?.close();
    throw e;
  }
}

export async function makeNod(u: UnionFs, parent: UnionNode, name: string, mode: number, rdev: number, caller: Caller) {
  return placeNew(u, parent, name, caller, async (path, _over, owner) => {
    mknod(path, mode, rdev);
    lchownSync(path, owner.uid, owner.gid);
    chmodSync(path, mode & 0o7777);
  });
}

export async function makeDir(u: UnionFs, parent: UnionNode, name: string, mode: number, caller: Caller) {
  const { writer } = u.side();
  return placeNew(u, parent, name, caller, async (path, overWhiteout, owner) => {
    mkdirSync(path, 0o700);
    if (overWhiteout) writer.setOpaque(path);
    lchownSync(path, owner.uid, owner.gid);
    chmodSync(path, (mode & 0o7777) | (owner.setgidDir ? S_ISGID : 0));
  });
}

export async function makeSymlink(u: UnionFs, parent: UnionNode, name: string, target: string, caller: Caller) {
  return placeNew(u, parent, name, caller, async (path, _over, owner) => {
    symlinkSync(target, path);
    lchownSync(path, owner.uid, owner.gid);
  });
}

/** link(2): the source is copied up first, so both names share one upper inode. */
export async function makeLink(u: UnionFs, source: UnionNode, parent: UnionNode, name: string, caller: Caller) {
  if (isDirNode(source)) throw new FsError("EPERM", "link", source.path);
  const { copyUp, writer } = u.side();
  const upper = await copyUp.ensureUpper(source);
  const node = await placeNew(u, parent, name, caller, async (path) => {
    linkSync(realPath(upper), path);
  });
  // the new name may carry a lower origin: the kernel then reads its d_ino from the origin
  if (node.parent?.upper) writer.setImpure(realPath(node.parent.upper));
  return node;
}
