/**
 * File handles and filesystem identity, for recording where a copied-up object came from the
 * way overlayfs does (trusted.overlay.origin holds the lower object's file handle plus the
 * UUID of its filesystem).
 */
import { closeSync, constants as fsc, openSync } from "node:fs";
import { AT_FDCWD, check, cpath, libc, type PathLike } from "./libc.js";

const MAX_HANDLE_SZ = 128;
/** _IOR(0x15, 0, struct fsuuid2 { u8 len; u8 uuid[16]; }) */
const FS_IOC_GETFSUUID = 0x80111500;

const nameToHandleAtFn = libc.func(
  "int name_to_handle_at(int dirfd, const char *path, _Inout_ uint8_t *handle, _Out_ int *mount_id, int flags)",
);
const ioctlFn = libc.func("int ioctl(int fd, unsigned long request, ...)") as (...args: unknown[]) => number;

const openByHandleAtFn = libc.func("int open_by_handle_at(int mount_fd, const uint8_t *handle, int flags)") as (
  mountFd: number,
  handle: Buffer,
  flags: number,
) => number;

const O_PATH = 0o10000000;
const O_CLOEXEC = 0o2000000;

export interface FileHandleInfo {
  type: number;
  bytes: Buffer;
}

/** name_to_handle_at without following a final symlink. */
export function nameToHandle(path: PathLike): FileHandleInfo {
  const buf = Buffer.alloc(8 + MAX_HANDLE_SZ);
  buf.writeUInt32LE(MAX_HANDLE_SZ, 0);
  const mountId = [0];
  check(nameToHandleAtFn(AT_FDCWD, cpath(path, "name_to_handle_at"), buf, mountId, 0), "name_to_handle_at", path);
  const length = buf.readUInt32LE(0);
  return { type: buf.readInt32LE(4), bytes: Buffer.from(buf.subarray(8, 8 + length)) };
}

/** The filesystem's UUID (FS_IOC_GETFSUUID), or null when it has none (tmpfs, ...). */
export function filesystemUuid(fd: number): Buffer | null {
  const arg = Buffer.alloc(17);
  const ret = ioctlFn(fd, FS_IOC_GETFSUUID, "uint8_t *", arg);
  if (ret < 0) return null;
  const len = arg.readUInt8(0);
  if (len !== 16) return null;
  return Buffer.from(arg.subarray(1, 17));
}

/** The UUID of the filesystem a directory is on, or null when it has none. */
export function directoryFilesystemUuid(dir: string): Buffer | null {
  const fd = openSync(dir, fsc.O_RDONLY | fsc.O_DIRECTORY);
  try {
    return filesystemUuid(fd);
  } finally {
    closeSync(fd);
  }
}

/**
 * Opens the object a file handle names (O_PATH: for fstat, not for I/O), on the filesystem
 * `mountFd` lives on. Needs CAP_DAC_READ_SEARCH. Each filesystem lays its handles out its own
 * way, so asking the kernel is the only portable way to learn what a handle names.
 */
export function openByHandle(mountFd: number, handle: FileHandleInfo): number {
  const buf = Buffer.alloc(8 + handle.bytes.length);
  buf.writeUInt32LE(handle.bytes.length, 0);
  buf.writeInt32LE(handle.type, 4);
  handle.bytes.copy(buf, 8);
  return check(openByHandleAtFn(mountFd, buf, O_PATH | O_CLOEXEC), "open_by_handle_at");
}
