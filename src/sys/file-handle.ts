/**
 * File handles and filesystem identity, for recording where a copied-up object came from the
 * way overlayfs does (trusted.overlay.origin holds the lower object's file handle plus the
 * UUID of its filesystem).
 */
import { AT_FDCWD, check, cpath, libc, type PathLike } from "./libc.js";

const MAX_HANDLE_SZ = 128;
/** _IOR(0x15, 0, struct fsuuid2 { u8 len; u8 uuid[16]; }) */
const FS_IOC_GETFSUUID = 0x80111500;

const nameToHandleAtFn = libc.func(
  "int name_to_handle_at(int dirfd, const char *path, _Inout_ uint8_t *handle, _Out_ int *mount_id, int flags)",
);
const ioctlFn = libc.func("int ioctl(int fd, unsigned long request, ...)") as (...args: unknown[]) => number;

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
