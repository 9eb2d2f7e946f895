/**
 * flock(2): whole-file advisory locks, released by the kernel when the holder exits, however it
 * exits. The layer store serialises concurrent `unionfs` invocations with one.
 */
import { check, ERRNO, errno, libc } from "./libc.js";

const LOCK_SH = 1;
const LOCK_EX = 2;
const LOCK_NB = 4;
const LOCK_UN = 8;
const EWOULDBLOCK = ERRNO.EWOULDBLOCK ?? 11;

const flockFn = libc.func("int flock(int fd, int operation)") as (fd: number, operation: number) => number;

/** Takes an exclusive lock without blocking; false when another holder has it. */
export function tryLockExclusive(fd: number): boolean {
  const ret = flockFn(fd, LOCK_EX | LOCK_NB);
  if (ret < 0 && errno() === EWOULDBLOCK) return false;
  check(ret, "flock");
  return true;
}

/** Takes a shared lock without blocking; false when someone holds it exclusively. */
export function tryLockShared(fd: number): boolean {
  const ret = flockFn(fd, LOCK_SH | LOCK_NB);
  if (ret < 0 && errno() === EWOULDBLOCK) return false;
  check(ret, "flock");
  return true;
}

export function unlock(fd: number): void {
  check(flockFn(fd, LOCK_UN), "flock");
}
