/**
 * Changes to an existing object's attributes, data size and xattrs. Each copies a lower
 * object up first (truncation to zero copies no data); the change then applies to the upper
 * copy. Removing an xattr the object does not have fails without a copy-up, as in overlayfs.
 */
import {
  chmodSync,
  fchmodSync,
  fchownSync,
  constants as fsc,
  fstatSync,
  ftruncateSync,
  lchownSync,
  lstatSync,
  truncateSync,
} from "node:fs";
import { FsError } from "../errors.js";
import { isPrivateXattr } from "../format/overlay-xattr.js";
import { futimens, lutimens } from "../sys/utimens.js";
import { fgetxattr, fremovexattr, lgetxattr, lremovexattr, lsetxattr } from "../sys/xattr.js";
import type { OpenFile } from "./handles.js";
import { realPath } from "./layer.js";
import { isDirNode, type UnionNode } from "./node-table.js";
import type { UnionContext } from "./union-context.js";

/**
 * The changes of one setattr request, as FUSE's valid mask carries them: a field that is absent
 * is left as it is. Times are nanoseconds since the epoch, or "now".
 */
export interface AttrChanges {
  mode?: number;
  uid?: number;
  gid?: number;
  size?: number;
  atime?: bigint | "now";
  mtime?: bigint | "now";
  /** the change is a truncate or chown by a caller without CAP_FSETID: see killPrivileges */
  killPrivileges?: boolean;
}

function upperPath(u: UnionContext, node: UnionNode, withData = true): Buffer {
  return realPath(u.side().copyUp.ensureUpper(node, withData));
}

/**
 * Applies `changes` to the object, copying it up first (a truncation to zero copies no data).
 * Owner before mode (chown clears set-id bits), size before times (truncation sets mtime). A
 * size change through a file open for writing truncates that file; a file whose last name is
 * gone changes through its open file.
 */
export function setattrNode(u: UnionContext, node: UnionNode, changes: AttrChanges, open?: OpenFile): void {
  const { mode, uid, gid, size, atime, mtime } = changes;
  if (size !== undefined && isDirNode(node)) throw new FsError("EISDIR", "truncate", node.path);
  if (open !== undefined && node.links.length === 0) {
    setattrOpenFile(open, changes);
    return;
  }
  const onlySize = mode === undefined && uid === undefined && gid === undefined && atime === undefined;
  const writable = open !== undefined && (open.flags & (fsc.O_WRONLY | fsc.O_RDWR)) !== 0;
  if (writable && size !== undefined && onlySize && mtime === undefined) {
    ftruncateSync(open.fd, size);
    if (changes.killPrivileges) killPrivileges(u, node, open);
    return;
  }
  const path = upperPath(u, node, size === undefined || size > 0);
  if (uid !== undefined || gid !== undefined) lchownSync(path, uid ?? -1, gid ?? -1);
  if (mode !== undefined) chmodSync(path, mode & 0o7777);
  if (size !== undefined) truncateSync(path, size);
  if (atime !== undefined || mtime !== undefined) lutimens(path, atime ?? "omit", mtime ?? "omit");
  if (changes.killPrivileges) killPrivileges(u, node);
}

const CAPABILITY_XATTR = "security.capability";
const S_ISUID = 0o4000;
const S_ISGID = 0o2000;

/**
 * What a write or truncate by a caller without CAP_FSETID does to a file: its set-user-ID bit
 * goes, its set-group-ID bit if its group may execute it, and its file capability. The kernel
 * leaves this to a FUSE server that handles killpriv (v2), and the daemon's own writes, made
 * as root, would keep all three. Only an upper copy is touched: a write never reaches a lower one.
 * Returns whether anything went (the attributes a transport's kernel caches are then stale).
 */
export function killPrivileges(u: UnionContext, node: UnionNode, open?: OpenFile): boolean {
  if (open?.inUpper) {
    const fd = open.fd;
    const dropped = dropSetId(fstatSync(fd).mode, (mode) => fchmodSync(fd, mode));
    const capability = fgetxattr(fd, CAPABILITY_XATTR) !== null;
    if (capability) fremovexattr(fd, CAPABILITY_XATTR);
    return dropped || capability;
  }
  const branch = u.data(node);
  if (!branch.layer.writable) return false;
  const path = realPath(branch);
  const dropped = dropSetId(lstatSync(path).mode, (mode) => chmodSync(path, mode));
  // read before it is removed: a daemon that is not root may not remove a security.* xattr,
  // even one that is not there (EPERM), and a file almost never has one
  const capability = lgetxattr(path, CAPABILITY_XATTR) !== null;
  if (capability) lremovexattr(path, CAPABILITY_XATTR);
  return dropped || capability;
}

/** Clears the set-id bits `mode` must lose; true if there were any. */
function dropSetId(mode: number, chmod: (mode: number) => void): boolean {
  let kept = mode & 0o7777 & ~S_ISUID;
  if ((kept & (S_ISGID | fsc.S_IXGRP)) === (S_ISGID | fsc.S_IXGRP)) kept &= ~S_ISGID;
  if (kept === (mode & 0o7777)) return false;
  chmod(kept);
  return true;
}

/**
 * setattr of an open file with no name left (fchmod, fchown, ftruncate, futimens after unlink).
 * Only an upper copy may change: a file opened from a lower layer and unlinked since has no
 * name left to copy it up to.
 */
function setattrOpenFile(open: OpenFile, changes: AttrChanges): void {
  const { mode, uid, gid, size, atime, mtime } = changes;
  if (!open.inUpper) throw new FsError("ESTALE", "setattr", open.node.path);
  if (uid !== undefined || gid !== undefined) fchownSync(open.fd, uid ?? -1, gid ?? -1);
  if (mode !== undefined) fchmodSync(open.fd, mode & 0o7777);
  if (size !== undefined) ftruncateSync(open.fd, size);
  if (atime !== undefined || mtime !== undefined) futimens(open.fd, atime ?? "omit", mtime ?? "omit");
}

export function setxattrNode(u: UnionContext, node: UnionNode, name: string, value: Buffer, flags: number): void {
  if (isPrivateXattr(name)) throw new FsError("EPERM", "setxattr", node.path);
  lsetxattr(upperPath(u, node), name, value, flags);
}

export function removexattrNode(u: UnionContext, node: UnionNode, name: string): void {
  if (isPrivateXattr(name)) throw new FsError("ENODATA", "removexattr", node.path);
  if (node.upper === null && lgetxattr(realPath(u.data(node)), name) === null) {
    throw new FsError("ENODATA", "removexattr", node.path);
  }
  lremovexattr(upperPath(u, node), name);
}
