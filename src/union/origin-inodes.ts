/**
 * The lower object an origin record names: its filesystem (st_dev) and inode number. The record
 * holds the filesystem's UUID and a file handle, whose layout is each filesystem's own (ext4:
 * {ino, gen}; tmpfs: {gen, ino_lo, ino_hi}; btrfs: 64-bit ids). The UUID picks the lower
 * filesystem, the handle is handed back to that filesystem's kernel (open_by_handle_at) and the
 * object it opens is fstat'ed, as overlayfs itself decodes origins. Two lower filesystems with
 * one UUID make the UUID useless, so their records are not decoded (the kernel's "bad uuid").
 * Lowers never change: answers are cached.
 */
import { closeSync, constants as fsc, fstatSync, openSync } from "node:fs";
import { LRUCache } from "lru-cache";
import { decodeOrigin, originIno } from "../format/origin.js";
import { directoryFilesystemUuid, openByHandle } from "../sys/file-handle.js";
import type { Layer } from "./layer.js";

export interface OriginObject {
  dev: bigint;
  ino: bigint;
}

interface LowerFs {
  dev: bigint;
  /** a directory on it, for open_by_handle_at's mount fd */
  root: string;
  fd: number | null;
}

export class OriginInodes {
  // maxSize, not max, so the slots are not all allocated at mount (see lookup.ts)
  private readonly cache = new LRUCache<string, OriginObject | "none">({ maxSize: 100_000, sizeCalculation: () => 1 });
  /** hex UUID -> the one lower filesystem carrying it, or null when several do */
  private byUuid: Map<string, LowerFs | null> | null = null;

  constructor(private readonly lowers: readonly Layer[]) {}

  /** Closes the filesystems' mount fds. */
  close(): void {
    for (const fs of this.byUuid?.values() ?? []) {
      if (fs?.fd != null) closeSync(fs.fd);
      if (fs != null) fs.fd = null;
    }
  }

  resolve(raw: Buffer): OriginObject | null {
    const key = raw.toString("hex");
    let found = this.cache.get(key);
    if (found === undefined) {
      found = this.decode(raw) ?? "none";
      this.cache.set(key, found);
    }
    return found === "none" ? null : found;
  }

  private decode(raw: Buffer): OriginObject | null {
    const origin = decodeOrigin(raw);
    if (origin === null) return null;
    const fs = this.filesystems().get(origin.uuid.toString("hex"));
    if (fs == null) return null;
    try {
      fs.fd ??= openSync(fs.root, fsc.O_RDONLY | fsc.O_DIRECTORY);
      const fd = openByHandle(fs.fd, { type: origin.type, bytes: origin.fid });
      try {
        const st = fstatSync(fd, { bigint: true });
        return { dev: st.dev, ino: st.ino };
      } finally {
        closeSync(fd);
      }
    } catch {
      // no CAP_DAC_READ_SEARCH, or a stale handle: read ext4's layout, the common case
      const ino = originIno(origin);
      return ino === null ? null : { dev: fs.dev, ino };
    }
  }

  private filesystems(): Map<string, LowerFs | null> {
    if (this.byUuid !== null) return this.byUuid;
    const byUuid = new Map<string, LowerFs | null>();
    for (const layer of this.lowers) {
      const uuid = directoryFilesystemUuid(layer.at)?.toString("hex");
      if (uuid === undefined) continue;
      const known = byUuid.get(uuid);
      if (known === undefined) byUuid.set(uuid, { dev: layer.dev, root: layer.at, fd: null });
      else if (known !== null && known.dev !== layer.dev) byUuid.set(uuid, null);
    }
    this.byUuid = byUuid;
    return byUuid;
  }
}
