/**
 * Copy-up: the first modification of an object that lives only in a lower layer copies it into
 * the upper. Parents first (with their modes, owners, times and xattrs), then the object: data
 * (unless it is about to be truncated), owner, mode (after chown, which clears set-id bits),
 * xattrs except overlay-private ones, an overlayfs origin record, and times. Everything is
 * assembled in the work dir and made visible with one rename that refuses to replace, so readers
 * never see a partial object and the loser of a race discards its copy. The parent's times are
 * restored afterwards, as overlayfs does.
 */

import { type BigIntStats, closeSync, constants as fsc, openSync } from "node:fs";
import { chmod, lchown, lstat, lutimes, mkdir, open, readlink, rm, symlink, utimes } from "node:fs/promises";
import { join } from "node:path";
import { FsError, hasCode } from "../errors.js";
import { encodeOrigin } from "../format/origin.js";
import { isPrivateXattr, OverlayKey } from "../format/overlay-xattr.js";
import { filesystemUuid, nameToHandle } from "../sys/file-handle.js";
import { mknod } from "../sys/mknod.js";
import { lgetxattr, llistxattr, lsetxattr } from "../sys/xattr.js";
import { copyData } from "./copy-data.js";
import { type Branch, childBranch, type Layer, realPath } from "./layer.js";
import type { UnionNode } from "./node-table.js";
import type { UpperWriter } from "./upper-writer.js";

const NS_PER_S = 1e9;

export class CopyUp {
  private readonly uuids = new Map<number, Buffer | null>();

  constructor(private readonly writer: UpperWriter) {}

  /**
   * The object's upper branch, copying it (and its parents) up first if needed.
   * `withData: false` is for an object about to be truncated to zero: its data is not copied.
   */
  async ensureUpper(node: UnionNode, withData = true): Promise<Branch> {
    if (node.upper !== null) return node.upper;
    const parent = node.parent;
    const lower = node.lowers[0];
    if (parent === null || lower === undefined) throw new FsError("EIO", "copy-up", node.path);
    const parentUpper = await this.ensureUpper(parent);
    const parentDir = realPath(parentUpper);
    const src = realPath(lower);
    const st = await lstat(src, { bigint: true });
    const tmp = this.writer.work.tempPath();
    await this.assemble(src, st, tmp, withData, lower.layer);
    const parentStat = await lstat(parentDir, { bigint: true });
    if (!this.writer.installNew(tmp, join(parentDir, node.name))) {
      await rm(tmp, { recursive: true, force: true });
    }
    this.writer.setImpure(parentDir);
    await restoreTimes(parentDir, parentStat);
    node.upper = childBranch(parentUpper, node.name);
    return node.upper;
  }

  private async assemble(src: string, st: BigIntStats, tmp: string, withData: boolean, layer: Layer): Promise<void> {
    const mode = Number(st.mode);
    const type = mode & fsc.S_IFMT;
    if (type === fsc.S_IFDIR) await mkdir(tmp, 0o700);
    else if (type === fsc.S_IFREG) await this.copyFile(src, tmp, withData ? Number(st.size) : 0);
    else if (type === fsc.S_IFLNK) await symlink(await readlink(src), tmp);
    else mknod(tmp, mode, Number(st.rdev));
    await lchown(tmp, Number(st.uid), Number(st.gid));
    if (type !== fsc.S_IFLNK) await chmod(tmp, mode & 0o7777);
    copyXattrs(src, tmp);
    this.recordOrigin(src, tmp, layer);
    await restoreTimes(tmp, st);
  }

  private async copyFile(src: string, tmp: string, size: number): Promise<void> {
    const from = await open(src, fsc.O_RDONLY | fsc.O_NOFOLLOW);
    try {
      const to = await open(tmp, fsc.O_WRONLY | fsc.O_CREAT | fsc.O_EXCL, 0o600);
      try {
        await copyData(from.fd, to.fd, size);
        await to.truncate(size);
      } finally {
        await to.close();
      }
    } finally {
      await from.close();
    }
  }

  /** trusted.overlay.origin: keeps st_ino across remounts, for unionfs and the kernel alike. */
  private recordOrigin(src: string, tmp: string, layer: Layer): void {
    const uuid = this.layerUuid(layer);
    if (uuid === null) return;
    try {
      const handle = nameToHandle(src);
      const value = encodeOrigin({ type: handle.type, uuid, fid: handle.bytes });
      lsetxattr(tmp, this.writer.xattrNamespace + OverlayKey.origin, value);
    } catch (e) {
      if (!hasCode(e, "EOPNOTSUPP", "ENOTSUP", "EPERM", "EOVERFLOW")) throw e;
    }
  }

  private layerUuid(layer: Layer): Buffer | null {
    let uuid = this.uuids.get(layer.index);
    if (uuid === undefined) {
      const fd = openSync(layer.root, fsc.O_RDONLY | fsc.O_DIRECTORY);
      try {
        uuid = filesystemUuid(fd);
      } finally {
        closeSync(fd);
      }
      this.uuids.set(layer.index, uuid);
    }
    return uuid;
  }
}

export function copyXattrs(src: string, dest: string): void {
  for (const name of llistxattr(src)) {
    if (isPrivateXattr(name)) continue;
    const value = lgetxattr(src, name);
    if (value === null) continue;
    try {
      lsetxattr(dest, name, value);
    } catch (e) {
      // user.* cannot be set on symlinks; security.* may be refused by an LSM
      if (!hasCode(e, "EPERM", "EOPNOTSUPP", "ENOTSUP")) throw e;
    }
  }
}

export async function restoreTimes(path: string, st: BigIntStats): Promise<void> {
  const atime = Number(st.atimeNs) / NS_PER_S;
  const mtime = Number(st.mtimeNs) / NS_PER_S;
  if (st.isSymbolicLink()) await lutimes(path, atime, mtime);
  else await utimes(path, atime, mtime);
}
