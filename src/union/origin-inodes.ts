/**
 * The inode number an origin record names. The record holds a file handle, whose layout is
 * each filesystem's own (ext4: {ino, gen}; tmpfs: {gen, ino_lo, ino_hi}; btrfs: 64-bit ids), so
 * the handle is handed back to the kernel (open_by_handle_at) and the object it opens is
 * fstat'ed, as overlayfs itself decodes origins. Lowers never change: answers are cached.
 */
import { closeSync, constants as fsc, fstatSync, openSync } from "node:fs";
import { LRUCache } from "lru-cache";
import { decodeOrigin, originIno } from "../format/origin.js";
import { openByHandle } from "../sys/file-handle.js";

export class OriginInodes {
  private readonly cache = new LRUCache<string, bigint | "none">({ max: 100_000 });
  private mountFd: number | null = null;

  /** @param lowerRoot any directory on the lowers' filesystem */
  constructor(private readonly lowerRoot: string) {}

  ino(raw: Buffer): bigint | null {
    const key = raw.toString("hex");
    let ino = this.cache.get(key);
    if (ino === undefined) {
      ino = this.resolve(raw) ?? "none";
      this.cache.set(key, ino);
    }
    return ino === "none" ? null : ino;
  }

  private resolve(raw: Buffer): bigint | null {
    const origin = decodeOrigin(raw);
    if (origin === null) return null;
    try {
      this.mountFd ??= openSync(this.lowerRoot, fsc.O_RDONLY | fsc.O_DIRECTORY);
      const fd = openByHandle(this.mountFd, { type: origin.type, bytes: origin.fid });
      try {
        return fstatSync(fd, { bigint: true }).ino;
      } finally {
        closeSync(fd);
      }
    } catch {
      // no CAP_DAC_READ_SEARCH, or a stale handle: read ext4's layout, the common case
      return originIno(origin);
    }
  }
}
