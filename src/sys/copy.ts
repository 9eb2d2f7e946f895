/**
 * Data copy primitives for copy-up: reflink (FICLONE), copy_file_range, sendfile (which
 * works between any two filesystems, where the first two return EXDEV), hole discovery
 * (lseek SEEK_DATA / SEEK_HOLE) so sparse files stay sparse, and range writeback
 * (sync_file_range), so a durable copy copies and writes to disk at the same time.
 *
 * Invariants: offsets and lengths are numbers (files beyond 2^53 bytes are out of scope);
 * `copyFileRange` with an explicit offset neither reads nor moves that fd's file position;
 * `sendfileAt` reads at an explicit offset but writes at (and moves) the destination's file
 * position, which it sets first. Both may copy fewer bytes than asked (callers loop until they
 * return 0); seekData/seekHole return -1 at the end of data (ENXIO) instead of throwing.
 */

import type { KoffiFunc } from "koffi";
import { fsErrorFromErrno } from "../errors.js";
import { callAsync, check, ERRNO, errno, libc } from "./libc.js";

const FICLONE = 0x40049409;
const SEEK_SET = 0;
const SEEK_DATA = 3;
const SEEK_HOLE = 4;
const ENXIO = ERRNO.ENXIO ?? 6;
const SYNC_FILE_RANGE_WAIT_BEFORE = 1;
const SYNC_FILE_RANGE_WRITE = 2;
const SYNC_FILE_RANGE_WAIT_AFTER = 4;

const ioctl = libc.func("int ioctl(int fd, unsigned long request, ...)") as (...args: unknown[]) => number;
const copyFileRangeFn = libc.func(
  "long copy_file_range(int fd_in, int64_t *off_in, int fd_out, int64_t *off_out, size_t len, unsigned int flags)",
) as KoffiFunc<
  (fdIn: number, offIn: Buffer | null, fdOut: number, offOut: Buffer | null, len: number, flags: number) => number
>;
const lseek = libc.func("int64_t lseek(int fd, int64_t offset, int whence)") as (
  fd: number,
  offset: number,
  whence: number,
) => number;

/**
 * Makes `destFd` share `srcFd`'s extents (btrfs, xfs with reflink, ...). Throws FsError when the
 * filesystem cannot (EOPNOTSUPP, EXDEV across filesystems, EINVAL): fall back to copyFileRange.
 */
export function ficlone(destFd: number, srcFd: number): void {
  check(ioctl(destFd, FICLONE, "int", srcFd), "ioctl(FICLONE)");
}

/** Copies up to `len` bytes in the kernel; `null` offsets use (and advance) the fd's position. */
export function copyFileRange(
  srcFd: number,
  srcOff: number | null,
  destFd: number,
  destOff: number | null,
  len: number,
): number {
  const n = copyFileRangeFn(srcFd, offsetBox(srcOff), destFd, offsetBox(destOff), len, 0);
  return check(n, "copy_file_range");
}

/**
 * copyFileRange with explicit offsets, on a worker thread. A failure is repeated here to learn
 * its errno (a worker's errno is not ours): copying a range to the same offsets again is harmless.
 */
export async function copyFileRangeAsync(
  srcFd: number,
  srcOff: number,
  destFd: number,
  destOff: number,
  len: number,
): Promise<number> {
  const n = await callAsync(copyFileRangeFn, srcFd, offsetBox(srcOff), destFd, offsetBox(destOff), len, 0);
  return n >= 0 ? n : copyFileRange(srcFd, srcOff, destFd, destOff, len);
}

const sendfileFn = libc.func("long sendfile(int out_fd, int in_fd, int64_t *offset, size_t count)") as KoffiFunc<
  (outFd: number, inFd: number, offset: Buffer, count: number) => number
>;

/**
 * Copies up to `len` bytes from `srcFd` at `srcOff` to `destFd` at `destOff` with sendfile(2).
 * Unlike copy_file_range it crosses filesystems; the destination's file position is set here
 * (sendfile writes at it), so the fd must be the copy's own.
 */
export function sendfileAt(srcFd: number, srcOff: number, destFd: number, destOff: number, len: number): number {
  seekTo(destFd, destOff);
  return check(sendfileFn(destFd, srcFd, offsetBox(srcOff), len), "sendfile");
}

/** sendfileAt on a worker thread; a failure is repeated here to learn its errno (harmless). */
export async function sendfileAtAsync(
  srcFd: number,
  srcOff: number,
  destFd: number,
  destOff: number,
  len: number,
): Promise<number> {
  seekTo(destFd, destOff);
  const n = await callAsync(sendfileFn, destFd, srcFd, offsetBox(srcOff), len);
  return n >= 0 ? n : sendfileAt(srcFd, srcOff, destFd, destOff, len);
}

function seekTo(fd: number, offset: number): void {
  if (lseek(fd, offset, SEEK_SET) < 0) throw fsErrorFromErrno(errno(), "lseek");
}

function offsetBox(off: number): Buffer;
function offsetBox(off: number | null): Buffer | null;
function offsetBox(off: number | null): Buffer | null {
  if (off === null) return null;
  const box = Buffer.alloc(8);
  box.writeBigInt64LE(BigInt(off));
  return box;
}

const syncFileRangeFn = libc.func(
  "int sync_file_range(int fd, int64_t offset, int64_t nbytes, unsigned int flags)",
) as KoffiFunc<(fd: number, offset: number, nbytes: number, flags: number) => number>;

/** Starts writing a range's dirty pages to disk and returns without waiting for them. */
export function startWriteback(fd: number, offset: number, length: number): void {
  check(syncFileRangeFn(fd, offset, length, SYNC_FILE_RANGE_WRITE), "sync_file_range");
}

/**
 * Resolves once a range's data is on disk (writing whatever is still dirty), waiting on a
 * worker thread. Data only: an fdatasync afterwards still makes the size and extents durable.
 */
export async function awaitWriteback(fd: number, offset: number, length: number): Promise<void> {
  const flags = SYNC_FILE_RANGE_WAIT_BEFORE | SYNC_FILE_RANGE_WRITE | SYNC_FILE_RANGE_WAIT_AFTER;
  // waiting again is harmless, so a failure is repeated here to learn its errno
  if ((await callAsync(syncFileRangeFn, fd, offset, length, flags)) < 0) {
    check(syncFileRangeFn(fd, offset, length, flags), "sync_file_range");
  }
}

/** The first offset >= `offset` that holds data, or -1 when there is none. */
export function seekData(fd: number, offset: number): number {
  return seek(fd, offset, SEEK_DATA, "lseek(SEEK_DATA)");
}

/** The first offset >= `offset` in a hole (the file size counts as one), or -1 past the end. */
export function seekHole(fd: number, offset: number): number {
  return seek(fd, offset, SEEK_HOLE, "lseek(SEEK_HOLE)");
}

function seek(fd: number, offset: number, whence: number, syscall: string): number {
  const ret = lseek(fd, offset, whence);
  if (ret >= 0) return ret;
  const e = errno();
  if (e === ENXIO) return -1;
  throw fsErrorFromErrno(e, syscall);
}
