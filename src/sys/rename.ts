/**
 * renameat2(2): rename with flags, the primitive behind atomic copy-up and whiteout creation.
 *
 * RENAME_NOREPLACE fails with EEXIST instead of replacing; RENAME_EXCHANGE swaps two existing
 * entries atomically; RENAME_WHITEOUT (root, or CAP_MKNOD) leaves an overlay whiteout (char device
 * 0/0) at the source in the same atomic step. Filesystems without a flag answer EINVAL.
 */
import { check, cpath, libc, type PathLike } from "./libc.js";

export const RENAME_NOREPLACE = 1;
export const RENAME_EXCHANGE = 2;
export const RENAME_WHITEOUT = 4;

const renameat2Fn = libc.func(
  "int renameat2(int olddirfd, const char *oldpath, int newdirfd, const char *newpath, unsigned int flags)",
) as (olddirfd: number, oldpath: string | Buffer, newdirfd: number, newpath: string | Buffer, flags: number) => number;

export function renameat2(
  olddirfd: number,
  oldpath: PathLike,
  newdirfd: number,
  newpath: PathLike,
  flags: number,
): void {
  const ret = renameat2Fn(olddirfd, cpath(oldpath, "renameat2"), newdirfd, cpath(newpath, "renameat2"), flags);
  check(ret, "renameat2", oldpath);
}
