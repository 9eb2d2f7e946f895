/**
 * mknod(2) and glibc's dev_t encoding (makedev / major / minor).
 *
 * Used for fifos, device nodes in layers and overlay whiteouts (a character device 0/0, which
 * needs root or CAP_MKNOD). dev_t is 64-bit; it is computed with BigInt and returned as a number
 * like Node's own `Stats.rdev`, exact for every major below 2^21.
 */
import { AT_FDCWD, check, cpath, libc, type PathLike } from "./libc.js";

const mknodat = libc.func("int mknodat(int dirfd, const char *path, uint32_t mode, uint64_t dev)") as (
  dirfd: number,
  path: string | Buffer,
  mode: number,
  dev: bigint,
) => number;

/** Creates a node; `mode` carries the type (S_IFIFO, S_IFCHR, ...) and the permission bits. */
export function mknod(path: PathLike, mode: number, dev: number): void {
  check(mknodat(AT_FDCWD, cpath(path, "mknod"), mode, BigInt(dev)), "mknod", path);
}

export function makedev(major: number, minor: number): number {
  const ma = BigInt(major >>> 0);
  const mi = BigInt(minor >>> 0);
  const dev = ((ma & 0xfffff000n) << 32n) | ((ma & 0xfffn) << 8n) | ((mi & 0xffffff00n) << 12n) | (mi & 0xffn);
  return Number(dev);
}

export function major(dev: number): number {
  const d = BigInt(dev);
  return Number(((d >> 32n) & 0xfffff000n) | ((d >> 8n) & 0xfffn));
}

export function minor(dev: number): number {
  const d = BigInt(dev);
  return Number(((d >> 12n) & 0xffffff00n) | (d & 0xffn));
}
