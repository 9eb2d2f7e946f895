/**
 * /dev/fuse beyond read and write: cloning a session's fd for another reader, and the
 * passthrough backing files (ioctls the Debian 12 headers, FUSE 7.38, do not define yet).
 *
 * A clone shares the session's request queue; a reply must go out on the fd its request was
 * read from. Backing ids belong to the connection, so any of its fds may close one.
 */
import { closeSync, openSync } from "node:fs";
import { check, libc } from "./libc.js";

/** _IOR(229, 0, uint32_t) */
const FUSE_DEV_IOC_CLONE = 0x8004e500;
/** _IOW(229, 1, struct fuse_backing_map) */
const FUSE_DEV_IOC_BACKING_OPEN = 0x4010e501;
/** _IOW(229, 2, uint32_t) */
const FUSE_DEV_IOC_BACKING_CLOSE = 0x4004e502;

const ioctl = libc.func("int ioctl(int fd, unsigned long request, ...)") as (...args: unknown[]) => number;

export const FUSE_DEVICE = "/dev/fuse";

/** Opens /dev/fuse for a new session (mount(2) or fusermount3 binds it to a mount). */
export function openFuseDevice(): number {
  return openSync(FUSE_DEVICE, "r+");
}

/** A new fd reading the same session's requests as `sessionFd`. */
export function cloneFuseDevice(sessionFd: number): number {
  const fd = openFuseDevice();
  try {
    const arg = Buffer.alloc(4);
    arg.writeUInt32LE(sessionFd, 0);
    check(ioctl(fd, FUSE_DEV_IOC_CLONE, "void *", arg), "ioctl(FUSE_DEV_IOC_CLONE)");
    return fd;
  } catch (e) {
    closeSync(fd);
    throw e;
  }
}

/** Registers `fd` as a passthrough backing file of the connection; returns its backing id. */
export function openBacking(devFd: number, fd: number): number {
  const map = Buffer.alloc(16);
  map.writeInt32LE(fd, 0);
  return check(ioctl(devFd, FUSE_DEV_IOC_BACKING_OPEN, "void *", map), "ioctl(FUSE_DEV_IOC_BACKING_OPEN)");
}

export function closeBacking(devFd: number, backingId: number): void {
  const arg = Buffer.alloc(4);
  arg.writeUInt32LE(backingId, 0);
  check(ioctl(devFd, FUSE_DEV_IOC_BACKING_CLOSE, "void *", arg), "ioctl(FUSE_DEV_IOC_BACKING_CLOSE)");
}
