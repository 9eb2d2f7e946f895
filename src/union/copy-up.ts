/**
 * Copy-up: the first modification of an object that lives only in a lower layer copies it into
 * the upper. Parents first (with their modes, owners, times and xattrs), then the object: data
 * (unless it is about to be truncated), owner, mode (after chown, which clears set-id bits),
 * xattrs except overlay-private ones, an overlayfs origin record, and times. Everything is
 * assembled in the work dir and made visible with one rename that refuses to replace, so readers
 * never see a partial object and the loser of a race discards its copy. The parent's times are
 * restored afterwards, as overlayfs does.
 *
 * The lower may be on another filesystem than the upper: the data copy picks a method that
 * crosses filesystems (copy-data.ts), and an xattr the upper's filesystem refuses is skipped
 * with a log line instead of failing the copy-up, as overlayfs skips what it cannot copy.
 */

import { type BigIntStats, constants as fsc } from "node:fs";
import { chmod, lchown, link, lstat, mkdir, open, readlink, rm, symlink } from "node:fs/promises";
import { join } from "node:path";
import { errorCode, FsError, hasCode, type Logger } from "../errors.js";
import { isPrivateXattr, OverlayKey } from "../format/overlay-xattr.js";
import { mknod } from "../sys/mknod.js";
import { lutimens } from "../sys/utimens.js";
import { lgetxattr, llistxattr, lsetxattr } from "../sys/xattr.js";
import { DataCopier } from "./copy-data.js";
import { HardlinkIndex } from "./hardlink-index.js";
import { type Branch, childBranch, type Layer, realPath } from "./layer.js";
import type { UnionNode } from "./node-table.js";
import type { OriginRecords } from "./origin-record.js";
import { lstatOrNull } from "./probe.js";
import type { UpperWriter } from "./upper-writer.js";

export class CopyUp {
  private readonly data: DataCopier;
  private readonly xattrs: XattrCopier;

  constructor(
    private readonly writer: UpperWriter,
    private readonly index: HardlinkIndex,
    private readonly origins: OriginRecords,
    /** sync each copy before it becomes visible (false on a volatile mount) */
    private readonly durable = true,
    log: Logger = () => {},
  ) {
    this.data = new DataCopier(durable);
    this.xattrs = new XattrCopier(log);
  }

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
    const dest = join(parentDir, node.name);
    const parentStat = await lstat(parentDir, { bigint: true });
    if (node.hardlinkOrigin !== null) {
      await this.linkUp(node, node.hardlinkOrigin, dest, withData);
    } else {
      const src = realPath(lower);
      const tmp = this.writer.work.tempPath();
      await this.assemble(src, await lstat(src, { bigint: true }), tmp, withData, lower.layer);
      if (!this.writer.installNew(tmp, dest)) await rm(tmp, { recursive: true, force: true });
    }
    this.writer.setImpure(parentDir);
    await restoreTimes(parentDir, parentStat);
    node.upper = childBranch(parentUpper, node.name);
    return node.upper;
  }

  /**
   * Copy-up of one name of a lower file with several: the first copies the file into the
   * index, every name (that one included) becomes a hard link to the index entry.
   */
  private async linkUp(node: UnionNode, origin: Buffer, dest: string, withData: boolean): Promise<void> {
    const lower = node.lowers[0];
    if (lower === undefined) throw new FsError("EIO", "copy-up", node.path);
    const src = realPath(lower);
    const st = await lstat(src, { bigint: true });
    const entry = realPath(this.index.branchFor(origin));
    const indexed = lstatOrNull(entry);
    const unionNlink = indexed === null ? Number(st.nlink) : HardlinkIndex.unionNlink(entry, Number(indexed.nlink));
    const tmp = this.writer.work.tempPath();
    if (indexed === null) {
      await this.assemble(src, st, tmp, withData, lower.layer);
      try {
        await link(tmp, entry);
      } catch (e) {
        // another name's copy-up won the race: use its copy
        if (!hasCode(e, "EEXIST")) throw e;
        await rm(tmp, { force: true });
        await link(entry, tmp);
      }
    } else {
      await link(entry, tmp);
    }
    if (!this.writer.installNew(tmp, dest)) await rm(tmp, { force: true });
    await this.index.setUnionNlink(entry, unionNlink);
  }

  private async assemble(src: string, st: BigIntStats, tmp: string, withData: boolean, layer: Layer): Promise<void> {
    const mode = Number(st.mode);
    const type = mode & fsc.S_IFMT;
    if (type === fsc.S_IFDIR) await mkdir(tmp, 0o700);
    else if (type === fsc.S_IFREG) await this.copyFile(src, st.dev, tmp, withData ? Number(st.size) : 0);
    else if (type === fsc.S_IFLNK) await symlink(await readlink(src), tmp);
    else mknod(tmp, mode, Number(st.rdev));
    await lchown(tmp, Number(st.uid), Number(st.gid));
    if (type !== fsc.S_IFLNK) await chmod(tmp, mode & 0o7777);
    this.xattrs.copy(src, tmp);
    const origin = this.origins.of(src, layer);
    if (origin !== null) lsetxattr(tmp, this.writer.xattrNamespace + OverlayKey.origin, origin);
    await restoreTimes(tmp, st);
  }

  private async copyFile(src: string, srcDev: bigint, tmp: string, size: number): Promise<void> {
    const from = await open(src, fsc.O_RDONLY | fsc.O_NOFOLLOW);
    try {
      const to = await open(tmp, fsc.O_WRONLY | fsc.O_CREAT | fsc.O_EXCL, 0o600);
      try {
        await this.data.copy({ fd: from.fd, dev: srcDev }, { fd: to.fd, dev: this.writer.work.dev }, size);
        await to.truncate(size);
        // durable before the rename makes it visible, as overlayfs syncs a copy-up: a crash
        // must never leave the new name pointing at missing data
        if (this.durable) await to.datasync();
      } finally {
        await to.close();
      }
    } finally {
      await from.close();
    }
  }
}

/**
 * Copies an object's xattrs, overlay-private ones excepted. One the destination refuses is
 * skipped: user.* cannot be set on symlinks, an LSM may refuse security.*, and another
 * filesystem may not take a namespace or a value that large at all. Each kind of refusal is
 * logged once per attribute name, not once per file.
 */
export class XattrCopier {
  private readonly logged = new Set<string>();

  constructor(private readonly log: Logger) {}

  copy(src: string, dest: string): void {
    for (const name of llistxattr(src)) {
      if (isPrivateXattr(name)) continue;
      const value = lgetxattr(src, name);
      if (value === null) continue;
      try {
        lsetxattr(dest, name, value);
      } catch (e) {
        if (!hasCode(e, ...XATTR_REFUSALS)) throw e;
        this.skipped(name, errorCode(e) ?? "?", src);
      }
    }
  }

  private skipped(name: string, code: string, src: string): void {
    const key = `${name}\0${code}`;
    if (this.logged.has(key)) return;
    this.logged.add(key);
    this.log(`copy-up: the upper refuses xattr ${name} (${code}), first on ${src}; skipped wherever it occurs`);
  }
}

/** setxattr failures that mean "not here", not "the copy-up failed" */
const XATTR_REFUSALS = ["EPERM", "EOPNOTSUPP", "ENOTSUP", "E2BIG", "ERANGE", "ENOSPC", "EINVAL"];

/** Sets a copy's times to the original's, to the nanosecond. */
export async function restoreTimes(path: string, st: BigIntStats): Promise<void> {
  lutimens(path, st.atimeNs, st.mtimeNs);
}
