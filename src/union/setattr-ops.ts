/**
 * Changes to an existing object's attributes, data size and xattrs. Each copies a lower
 * object up first (truncation to zero copies no data); the change then applies to the upper
 * copy. Removing an xattr the object does not have fails without a copy-up, as in overlayfs.
 */
import { chmodSync, lchownSync, truncateSync } from "node:fs";
import { FsError } from "../errors.js";
import { isPrivateXattr } from "../format/overlay-xattr.js";
import { lutimens, type TimeSetting } from "../sys/utimens.js";
import { lgetxattr, lremovexattr, lsetxattr } from "../sys/xattr.js";
import { realPath } from "./layer.js";
import { isDirNode, type UnionNode } from "./node-table.js";
import type { UnionFs } from "./union-fs.js";

const NS_PER_MS = 1_000_000n;

/** "leave unchanged" for chown's uid or gid, as (uid_t)-1 arrives */
const UNCHANGED_ID = 0xffffffff;

export type TimeSpec = { ms: number } | "now" | "omit";

function upperPath(u: UnionFs, node: UnionNode, withData = true): string {
  return realPath(u.side().copyUp.ensureUpper(node, withData));
}

export function chmodNode(u: UnionFs, node: UnionNode, mode: number): void {
  chmodSync(upperPath(u, node), mode & 0o7777);
}

export function chownNode(u: UnionFs, node: UnionNode, uid: number, gid: number): void {
  const path = upperPath(u, node);
  lchownSync(path, uid === UNCHANGED_ID ? -1 : uid, gid === UNCHANGED_ID ? -1 : gid);
}

export function utimensNode(u: UnionFs, node: UnionNode, atime: TimeSpec, mtime: TimeSpec): void {
  const setting = (t: TimeSpec): TimeSetting =>
    t === "now" || t === "omit" ? t : BigInt(Math.round(t.ms)) * NS_PER_MS;
  lutimens(upperPath(u, node), setting(atime), setting(mtime));
}

export function truncateNode(u: UnionFs, node: UnionNode, size: number): void {
  if (isDirNode(node)) throw new FsError("EISDIR", "truncate", node.path);
  truncateSync(upperPath(u, node, size > 0), size);
}

export function setxattrNode(u: UnionFs, node: UnionNode, name: string, value: Buffer, flags: number): void {
  if (isPrivateXattr(name)) throw new FsError("EPERM", "setxattr", node.path);
  lsetxattr(upperPath(u, node), name, value, flags);
}

export function removexattrNode(u: UnionFs, node: UnionNode, name: string): void {
  if (isPrivateXattr(name)) throw new FsError("ENODATA", "removexattr", node.path);
  if (node.upper === null && lgetxattr(realPath(u.data(node)), name) === null) {
    throw new FsError("ENODATA", "removexattr", node.path);
  }
  lremovexattr(upperPath(u, node), name);
}
