/**
 * utimensat(2) with nanosecond times, UTIME_NOW and UTIME_OMIT, never following a final
 * symlink. Node's utimes takes double seconds, which libuv truncates to whole microseconds
 * and which cannot hold every millisecond exactly: times set through it read back early.
 */
import { AT_FDCWD, check, cpath, libc, type PathLike } from "./libc.js";

const AT_SYMLINK_NOFOLLOW = 0x100;
const UTIME_NOW = (1n << 30n) - 1n;
const UTIME_OMIT = (1n << 30n) - 2n;
const NS_PER_S = 1_000_000_000n;

/** A time to set: nanoseconds since the epoch, or leave as is, or the current time. */
export type TimeSetting = bigint | "now" | "omit";

const utimensatFn = libc.func("int utimensat(int dirfd, const char *path, const int64_t *times, int flags)") as (
  dirfd: number,
  path: string | Buffer | null,
  times: BigInt64Array,
  flags: number,
) => number;

function timespec(t: TimeSetting, out: BigInt64Array, at: number): void {
  if (t === "now" || t === "omit") {
    out[at] = 0n;
    out[at + 1] = t === "now" ? UTIME_NOW : UTIME_OMIT;
    return;
  }
  out[at] = t / NS_PER_S;
  out[at + 1] = t % NS_PER_S;
}

export function lutimens(path: PathLike, atime: TimeSetting, mtime: TimeSetting): void {
  const times = new BigInt64Array(4);
  timespec(atime, times, 0);
  timespec(mtime, times, 2);
  check(utimensatFn(AT_FDCWD, cpath(path, "utimensat"), times, AT_SYMLINK_NOFOLLOW), "utimensat", path);
}

/** futimens(3): the times of an open file (utimensat with a NULL path, as glibc does it). */
export function futimens(fd: number, atime: TimeSetting, mtime: TimeSetting): void {
  const times = new BigInt64Array(4);
  timespec(atime, times, 0);
  timespec(mtime, times, 2);
  check(utimensatFn(fd, null, times, 0), "futimens");
}
