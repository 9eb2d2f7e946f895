/**
 * Changes to an existing object's attributes, data size and xattrs. Each copies a lower
 * object up first (truncation to zero copies no data); the change then applies to the upper
 * copy. Removing an xattr the object does not have fails without a copy-up, as in overlayfs.
 */
import { chmodSync, lchownSync } from "node:fs";
import { truncate } from "node:fs/promises";
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

async function upperPath(u: UnionFs, node: UnionNode, withData = true): Promise<string> {
  return realPath(await u.side().copyUp.ensureUpper(node, withData));
}

export async function chmodNode(u: UnionFs, node: UnionNode, mode: number): Promise<void> {
  chmodSync(await upperPath(u, node), mode & 0o7777);
}

export async function chownNode(u: UnionFs, node: UnionNode, uid: number, gid: number): Promise<void> {
  const path = await upperPath(u, node);
  lchownSync(path, uid === UNCHANGED_ID ? -1 : uid, gid === UNCHANGED_ID ? -1 : gid);
}

export async function utimensNode(u: UnionFs, node: UnionNode, atime: TimeSpec, mtime: TimeSpec): Promise<void> {
  const setting = (t: TimeSpec): TimeSetting =>
    t === "now" || t === "omit" ? t : BigInt(Math.round(t.ms)) * NS_PER_MS;
  lutimens(await upperPath(u, node), setting(atime), setting(mtime));
}

export async function truncateNode(u: UnionFs, node: UnionNode, size: number): Promise<void> {
  if (isDirNode(node)) throw new FsError("EISDIR", "truncate", node.path);
  await truncate(await upperPath(u, node, size > 0), size);
}

export async function setxattrNode(u: UnionFs, node: UnionNode, name: string, value: Buffer, flags: number) {
  if (isPrivateXattr(name)) throw new FsError("EPERM", "setxattr", node.path);
  lsetxattr(await upperPath(u, node), name, value, flags);
}

export async function removexattrNode(u: UnionFs, node: UnionNode, name: string): Promise<void> {
  if (isPrivateXattr(name)) throw new FsError("ENODATA", "removexattr", node.path);
  if (node.upper === null && lgetxattr(realPath(u.data(node)), name) === null) {
    throw new FsError("ENODATA", "removexattr", node.path);
  }
  lremovexattr(await upperPath(u, node), name);
}
