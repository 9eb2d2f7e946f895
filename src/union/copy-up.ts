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
 *
 * Everything here is synchronous but the data copy of a large file, which is how the transport
 * wants it: `inline` copies on the calling thread (a worker thread may block), `staged` refuses
 * to (DataCopyNeeded) until `stage` has copied the data into a work-dir temp off the event
 * loop; the request is then repeated and the copy-up uses the staged temp. A staged temp is
 * keyed by the lower file it copies, not by node: the node may be evicted meanwhile and the
 * repeated request find the same file through a new one. Whoever staged a temp releases it
 * once the request is done, so one the copy-up did not take never stays in the work dir.
 */

import {
  type BigIntStats,
  chmodSync,
  closeSync,
  fdatasyncSync,
  constants as fsc,
  ftruncateSync,
  lchownSync,
  linkSync,
  lstatSync,
  mkdirSync,
  openSync,
  readlinkSync,
  rmSync,
  symlinkSync,
} from "node:fs";
import { open } from "node:fs/promises";
import { FsError, hasCode, type Logger } from "../errors.js";
import { OverlayKey } from "../format/overlay-xattr.js";
import { lstatOrNull } from "../layers/probe.js";
import type { PathLike } from "../sys/libc.js";
import { mknod } from "../sys/mknod.js";
import { lutimens } from "../sys/utimens.js";
import { lsetxattr } from "../sys/xattr.js";
import { DataCopier } from "./copy-data.js";
import { HardlinkIndex } from "./hardlink-index.js";
import { type Branch, childBranch, entryPath, type Layer, realPath } from "./layer.js";
import { type Link, linkBranch, type UnionNode } from "./node-table.js";
import type { OriginRecords } from "./origin-record.js";
import type { UpperWriter } from "./upper-writer.js";
import { XattrCopier } from "./xattr-copy.js";

/** How a copy-up copies file data: on the calling thread, or only what `stage` prepared. */
export type DataCopyMode = "inline" | "staged";

/** A staged-mode copy-up needs `node`'s data: stage it, then repeat the request. */
export class DataCopyNeeded extends Error {
  constructor(readonly node: UnionNode) {
    super(`copy-up of '${node.path}' needs its data staged first`);
    this.name = "DataCopyNeeded";
  }
}

export interface CopyUpOptions {
  /** sync each copy before it becomes visible (false on a volatile mount) */
  durable: boolean;
  dataCopy: DataCopyMode;
  log: Logger;
  /**
   * called once a name of `node` was copied up: its attributes may have changed where the
   * request that copied it up did not ask for a change (a merged directory's link count, the
   * copy's st_blocks), which a transport caching attributes must forget
   */
  copiedUp: (node: UnionNode) => void;
}

export class CopyUp {
  private readonly data: DataCopier;
  private readonly xattrs: XattrCopier;
  /**
   * lower file (stagedKey) -> a temp file in the work dir holding its data, complete and
   * synced, and its stat from before the copy read it (reading moves its atime)
   */
  private readonly staged = new Map<string, { tmp: string; st: BigIntStats }>();
  private readonly options: CopyUpOptions;

  constructor(
    private readonly upper: Layer,
    private readonly writer: UpperWriter,
    private readonly index: HardlinkIndex,
    private readonly origins: OriginRecords,
    options: Partial<CopyUpOptions> = {},
  ) {
    this.options = {
      durable: options.durable ?? true,
      dataCopy: options.dataCopy ?? "inline",
      log: options.log ?? (() => {}),
      copiedUp: options.copiedUp ?? (() => {}),
    };
    this.data = new DataCopier(this.options.durable);
    this.xattrs = new XattrCopier(this.options.log);
  }

  /**
   * The object's upper branch, copying it (and its parents) up first if needed.
   * `withData: false` is for an object about to be truncated to zero: its data is not copied.
   */
  ensureUpper(node: UnionNode, withData = true): Branch {
    const upper = node.upper;
    if (upper !== null) return upper;
    const first = node.links[0];
    // a file unlinked while open from below has no name left to copy up to
    if (first === undefined) throw new FsError("ESTALE", "copy-up", node.path);
    return this.ensureUpperLink(node, first, withData);
  }

  /**
   * The upper branch of one name of the object, copying it up there first if needed: a lower
   * file with several names is copied once (into the index), each name then links to it.
   */
  ensureUpperLink(node: UnionNode, link: Link, withData = true): Branch {
    const parent = link.parent;
    if (parent === null) return this.upperRoot();
    if (link.inUpper) return linkBranch(this.upperRoot().layer, link);
    // the index entry alone will do for a hard link another name copied up
    if (node.hardlinkOrigin === null && node.lowers.length === 0) throw new FsError("EIO", "copy-up", node.path);
    const parentUpper = this.ensureUpper(parent);
    const parentDir = realPath(parentUpper);
    const dest = entryPath(parentDir, link.name);
    const parentStat = lstatSync(parentDir, { bigint: true });
    if (node.hardlinkOrigin !== null) {
      this.linkUp(node, node.hardlinkOrigin, dest, withData);
    } else {
      const tmp = this.assemble(node, withData);
      if (!this.writer.installNew(tmp, dest)) rmSync(tmp, { recursive: true, force: true });
    }
    this.writer.setImpure(parentDir);
    restoreTimes(parentDir, parentStat);
    link.inUpper = true;
    this.options.copiedUp(node);
    return childBranch(parentUpper, link.name);
  }

  private upperRoot(): Branch {
    return { layer: this.upper, rel: "" };
  }

  /**
   * Copies the data a copy-up of `node` will need into a work-dir temp, off the event loop
   * (a no-op when it needs none); the next copy-up of the same lower file, through this node
   * or another, uses it. Returns the release: it removes the temp if no copy-up took it.
   */
  async stage(node: UnionNode): Promise<() => void> {
    const lower = node.lowers[0];
    if (node.upper !== null || lower === undefined || !this.needsData(node)) return NOTHING_STAGED;
    const src = realPath(lower);
    const st = lstatSync(src, { bigint: true });
    const tmp = this.writer.work.tempPath();
    try {
      await this.copyFileAsync(src, st.dev, tmp, Number(st.size));
    } catch (e) {
      rmSync(tmp, { force: true });
      throw e;
    }
    const key = stagedKey(lower);
    this.dropStaged(key);
    this.staged.set(key, { tmp, st });
    return () => {
      // another request may have staged the same file since: its temp is not ours to remove
      if (this.staged.get(key)?.tmp === tmp) this.dropStaged(key);
    };
  }

  /** Whether a copy-up of `node` would copy file data (a non-empty file, not indexed yet). */
  private needsData(node: UnionNode): boolean {
    const lower = node.lowers[0];
    if (lower === undefined || node.parent === null) return false;
    if (node.hardlinkOrigin !== null && this.index.find(node.hardlinkOrigin) !== null) return false;
    const st = lstatOrNull(realPath(lower));
    return st?.isFile() === true && st.size > 0n;
  }

  private dropStaged(key: string): void {
    const old = this.staged.get(key);
    if (old === undefined) return;
    this.staged.delete(key);
    rmSync(old.tmp, { force: true });
  }

  /**
   * Copy-up of one name of a lower file with several: the first copies the file into the
   * index, every name (that one included) becomes a hard link to the index entry.
   */
  private linkUp(node: UnionNode, origin: Buffer, dest: Buffer, withData: boolean): void {
    const entry = realPath(this.index.branchFor(origin));
    const indexed = lstatOrNull(entry);
    let unionNlink: number;
    let tmp: string;
    if (indexed === null) {
      const lower = node.lowers[0];
      if (lower === undefined) throw new FsError("EIO", "copy-up", node.path);
      unionNlink = Number(lstatSync(realPath(lower)).nlink);
      tmp = this.assemble(node, withData);
      try {
        linkSync(tmp, entry);
      } catch (e) {
        // another name's copy-up won the race: use its copy
        if (!hasCode(e, "EEXIST")) throw e;
        rmSync(tmp, { force: true });
        linkSync(entry, tmp);
      }
    } else {
      unionNlink = HardlinkIndex.unionNlink(entry, Number(indexed.nlink));
      const lower = node.lowers[0];
      if (lower !== undefined) this.dropStaged(stagedKey(lower));
      tmp = this.writer.work.tempPath();
      linkSync(entry, tmp);
    }
    if (!this.writer.installNew(tmp, dest)) rmSync(tmp, { force: true });
    this.index.setUnionNlink(entry, unionNlink);
  }

  /** Builds the copy of `node`'s topmost lower object in the work dir; returns where. */
  private assemble(node: UnionNode, withData: boolean): string {
    const lower = node.lowers[0];
    if (lower === undefined) throw new FsError("EIO", "copy-up", node.path);
    const src = realPath(lower);
    // before the data copy reads the file and moves its atime
    const key = stagedKey(lower);
    const st = this.staged.get(key)?.st ?? lstatSync(src, { bigint: true });
    const mode = Number(st.mode);
    const type = mode & fsc.S_IFMT;
    let tmp: string;
    if (type === fsc.S_IFREG) {
      tmp = this.fileWithData(node, key, src, st, withData ? Number(st.size) : 0);
    } else {
      tmp = this.writer.work.tempPath();
      if (type === fsc.S_IFDIR) mkdirSync(tmp, 0o700);
      else if (type === fsc.S_IFLNK) symlinkSync(readlinkSync(src, { encoding: "buffer" }), tmp);
      else mknod(tmp, mode, Number(st.rdev));
    }
    try {
      lchownSync(tmp, Number(st.uid), Number(st.gid));
      if (type !== fsc.S_IFLNK) chmodSync(tmp, mode & 0o7777);
      this.xattrs.copy(src, tmp);
      this.recordOrigin(src, lower.layer, tmp);
      restoreTimes(tmp, st);
    } catch (e) {
      rmSync(tmp, { recursive: true, force: true });
      throw e;
    }
    return tmp;
  }

  private recordOrigin(src: Buffer, layer: Layer, tmp: string): void {
    const origin = this.origins.of(src, layer);
    if (origin === null) return;
    try {
      lsetxattr(tmp, this.writer.xattrNamespace + OverlayKey.origin, origin);
    } catch (e) {
      // user.* xattrs cannot be set on symlinks and special files: such an object has no
      // origin record, as overlayfs ignores this EPERM (ovl_set_origin_fh)
      if (!hasCode(e, "EPERM")) throw e;
    }
  }

  /**
   * A work-dir temp holding the first `size` bytes of `src` (staged under `key`): staged,
   * copied here, or empty.
   */
  private fileWithData(node: UnionNode, key: string, src: Buffer, st: BigIntStats, size: number): string {
    if (size > 0) {
      const staged = this.staged.get(key);
      if (staged !== undefined) {
        this.staged.delete(key);
        return staged.tmp;
      }
      if (this.options.dataCopy === "staged") throw new DataCopyNeeded(node);
    } else {
      this.dropStaged(key);
    }
    const tmp = this.writer.work.tempPath();
    const from = openSync(src, fsc.O_RDONLY | fsc.O_NOFOLLOW);
    try {
      const to = openSync(tmp, fsc.O_WRONLY | fsc.O_CREAT | fsc.O_EXCL, 0o600);
      try {
        this.data.copySync({ fd: from, dev: st.dev }, { fd: to, dev: this.writer.work.dev }, size);
        ftruncateSync(to, size);
        // durable before the rename makes it visible, as overlayfs syncs a copy-up: a crash
        // must never leave the new name pointing at missing data
        if (this.options.durable && size > 0) fdatasyncSync(to);
      } finally {
        closeSync(to);
      }
    } finally {
      closeSync(from);
    }
    return tmp;
  }

  private async copyFileAsync(src: Buffer, srcDev: bigint, tmp: string, size: number): Promise<void> {
    const from = await open(src, fsc.O_RDONLY | fsc.O_NOFOLLOW);
    try {
      const to = await open(tmp, fsc.O_WRONLY | fsc.O_CREAT | fsc.O_EXCL, 0o600);
      try {
        await this.data.copy({ fd: from.fd, dev: srcDev }, { fd: to.fd, dev: this.writer.work.dev }, size);
        await to.truncate(size);
        if (this.options.durable) await to.datasync();
      } finally {
        await to.close();
      }
    } finally {
      await from.close();
    }
  }
}

const NOTHING_STAGED = () => {};

/** The lower file a staged temp copies: layer and path, which outlive any node of it. */
function stagedKey(lower: Branch): string {
  return `${lower.layer.index}\0${lower.rel}`;
}

/** Sets a copy's times to the original's, to the nanosecond. */
export function restoreTimes(path: PathLike, st: BigIntStats): void {
  lutimens(path, st.atimeNs, st.mtimeNs);
}
