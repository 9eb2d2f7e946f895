/**
 * openat2(2): open with kernel-enforced path resolution limits (Linux >= 5.6).
 *
 * glibc 2.36 has no wrapper, so this goes through syscall(2) with a `struct open_how`
 * { u64 flags; u64 mode; u64 resolve; } built by hand (24 bytes, little-endian on the targets we
 * run on). Unlike open(2) the kernel rejects unknown flag bits and a non-zero mode without
 * O_CREAT/O_TMPFILE (EINVAL). O_CLOEXEC is always added, as Node does for its own fds, so a
 * runner's child never inherits a layer fd.
 */
import { closeSync, constants } from "node:fs";
import { AT_FDCWD, check, cpathBytes, ERRNO, errno, libc, type PathLike } from "./libc.js";

export { AT_FDCWD };

export const RESOLVE_NO_XDEV = 0x01;
export const RESOLVE_NO_MAGICLINKS = 0x02;
export const RESOLVE_NO_SYMLINKS = 0x04;
export const RESOLVE_BENEATH = 0x08;
export const RESOLVE_IN_ROOT = 0x10;

const SYS_OPENAT2 = 437; // same number on every architecture (unified syscall table)
const OPEN_HOW_SIZE = 24;
const O_CLOEXEC = 0o2000000;

const syscall = libc.func("long syscall(long number, ...)") as (...args: unknown[]) => number;

/** Opens `path` relative to `dirfd` (AT_FDCWD for the cwd) and returns the new fd. */
export function openat2(dirfd: number, path: PathLike, flags: number, mode: number, resolve: number): number {
  const how = Buffer.alloc(OPEN_HOW_SIZE);
  how.writeBigUInt64LE(BigInt((flags | O_CLOEXEC) >>> 0), 0);
  how.writeBigUInt64LE(BigInt(mode), 8);
  how.writeBigUInt64LE(BigInt(resolve), 16);
  const p = cpathBytes(path, "openat2");
  const fd = syscall(SYS_OPENAT2, "int", dirfd, "void *", p, "void *", how, "size_t", OPEN_HOW_SIZE);
  return check(fd, "openat2", path);
}

let supported: boolean | undefined;

/**
 * Whether the kernel offers openat2, probed once. ENOSYS means an old kernel; EPERM is what older
 * container seccomp profiles answer for syscalls they do not know. Either way: fall back.
 */
export function openat2Supported(): boolean {
  if (supported !== undefined) return supported;
  const how = Buffer.alloc(OPEN_HOW_SIZE);
  how.writeBigUInt64LE(BigInt(constants.O_RDONLY | constants.O_DIRECTORY | O_CLOEXEC), 0);
  const fd = syscall(
    SYS_OPENAT2,
    "int",
    AT_FDCWD,
    "void *",
    Buffer.from("/\0"),
    "void *",
    how,
    "size_t",
    OPEN_HOW_SIZE,
  );
  if (fd >= 0) {
    closeSync(fd);
    supported = true;
  } else {
    const e = errno();
    supported = e !== (ERRNO.ENOSYS ?? 38) && e !== (ERRNO.EPERM ?? 1);
  }
  return supported;
}
