/**
 * The FUSE kernel protocol, version 7, as far as unionfs speaks it: opcodes, flags and the byte
 * layout of the structures (linux/fuse.h; minors up to 7.45, several of whose constants the
 * Debian 12 headers do not have). Everything is little-endian with natural alignment.
 */

export const FUSE_KERNEL_VERSION = 7;
/** the newest minor whose structures this codec knows */
export const FUSE_KERNEL_MINOR = 45;
export const FUSE_ROOT_ID = 1n;

export const Op = {
  LOOKUP: 1,
  FORGET: 2,
  GETATTR: 3,
  SETATTR: 4,
  READLINK: 5,
  SYMLINK: 6,
  MKNOD: 8,
  MKDIR: 9,
  UNLINK: 10,
  RMDIR: 11,
  RENAME: 12,
  LINK: 13,
  OPEN: 14,
  READ: 15,
  WRITE: 16,
  STATFS: 17,
  RELEASE: 18,
  FSYNC: 20,
  SETXATTR: 21,
  GETXATTR: 22,
  LISTXATTR: 23,
  REMOVEXATTR: 24,
  FLUSH: 25,
  INIT: 26,
  OPENDIR: 27,
  READDIR: 28,
  RELEASEDIR: 29,
  FSYNCDIR: 30,
  GETLK: 31,
  SETLK: 32,
  SETLKW: 33,
  ACCESS: 34,
  CREATE: 35,
  INTERRUPT: 36,
  BMAP: 37,
  DESTROY: 38,
  IOCTL: 39,
  POLL: 40,
  NOTIFY_REPLY: 41,
  BATCH_FORGET: 42,
  FALLOCATE: 43,
  READDIRPLUS: 44,
  RENAME2: 45,
  LSEEK: 46,
  COPY_FILE_RANGE: 47,
  SETUPMAPPING: 48,
  REMOVEMAPPING: 49,
  SYNCFS: 50,
  TMPFILE: 51,
  STATX: 52,
  COPY_FILE_RANGE_64: 53,
} as const;

export const OP_NAMES: ReadonlyMap<number, string> = new Map(Object.entries(Op).map(([k, v]) => [v, k]));

/** INIT flags (the low word; bits 32.. travel in flags2). */
export const Init = {
  ASYNC_READ: 2 ** 0,
  POSIX_LOCKS: 2 ** 1,
  ATOMIC_O_TRUNC: 2 ** 3,
  EXPORT_SUPPORT: 2 ** 4,
  BIG_WRITES: 2 ** 5,
  DONT_MASK: 2 ** 6,
  FLOCK_LOCKS: 2 ** 10,
  AUTO_INVAL_DATA: 2 ** 12,
  DO_READDIRPLUS: 2 ** 13,
  READDIRPLUS_AUTO: 2 ** 14,
  ASYNC_DIO: 2 ** 15,
  WRITEBACK_CACHE: 2 ** 16,
  PARALLEL_DIROPS: 2 ** 18,
  HANDLE_KILLPRIV: 2 ** 19,
  POSIX_ACL: 2 ** 20,
  ABORT_ERROR: 2 ** 21,
  MAX_PAGES: 2 ** 22,
  CACHE_SYMLINKS: 2 ** 23,
  EXPLICIT_INVAL_DATA: 2 ** 25,
  HANDLE_KILLPRIV_V2: 2 ** 28,
  SETXATTR_EXT: 2 ** 29,
  INIT_EXT: 2 ** 30,
} as const;

/** INIT flags2 (bit n here is bit 32+n of the 64-bit flags). */
export const Init2 = {
  PASSTHROUGH: 2 ** 5,
  NO_EXPORT_SUPPORT: 2 ** 6,
} as const;

/** fuse_setattr_in.valid */
export const Fattr = {
  MODE: 1 << 0,
  UID: 1 << 1,
  GID: 1 << 2,
  SIZE: 1 << 3,
  ATIME: 1 << 4,
  MTIME: 1 << 5,
  FH: 1 << 6,
  ATIME_NOW: 1 << 7,
  MTIME_NOW: 1 << 8,
  LOCKOWNER: 1 << 9,
  CTIME: 1 << 10,
  KILL_SUIDGID: 1 << 11,
} as const;

/** fuse_open_out.open_flags */
export const Fopen = {
  DIRECT_IO: 1 << 0,
  KEEP_CACHE: 1 << 1,
  NONSEEKABLE: 1 << 2,
  CACHE_DIR: 1 << 3,
  STREAM: 1 << 4,
  NOFLUSH: 1 << 5,
  PARALLEL_DIRECT_WRITES: 1 << 6,
  PASSTHROUGH: 1 << 7,
} as const;

/** notifications the daemon sends unasked (out header: error = the code, unique = 0) */
export const Notify = {
  INVAL_INODE: 2,
  INVAL_ENTRY: 3,
} as const;

export const FUSE_GETATTR_FH = 1;
export const FUSE_FSYNC_FDATASYNC = 1;
/** fuse_write_in.write_flags: the writer lacks CAP_FSETID (killpriv v2) */
export const FUSE_WRITE_KILL_SUIDGID = 1 << 2;
/** fuse_open_in.open_flags: an O_TRUNC open by a caller without CAP_FSETID (killpriv v2) */
export const FUSE_OPEN_KILL_SUIDGID = 1 << 0;

/** Sizes of the structures, in bytes. */
export const Size = {
  IN_HEADER: 40,
  OUT_HEADER: 16,
  ATTR: 88,
  ENTRY_OUT: 128,
  ATTR_OUT: 104,
  OPEN_OUT: 16,
  INIT_IN: 64,
  INIT_OUT: 64,
  WRITE_IN: 40,
  WRITE_OUT: 8,
  STATFS_OUT: 80,
  GETXATTR_OUT: 8,
  /** fuse_setxattr_in without FUSE_SETXATTR_EXT */
  SETXATTR_IN_COMPAT: 8,
  SETXATTR_IN: 16,
  LSEEK_OUT: 8,
  DIRENT: 24,
  DIRENTPLUS: 152,
  FORGET_ONE: 16,
  NOTIFY_INVAL_INODE: 24,
} as const;

/** the smallest read buffer the kernel accepts, and the largest write it is told to send */
export const MIN_READ_BUFFER = 8192;
export const MAX_PAGES = 256;
export const MAX_WRITE = MAX_PAGES * 4096;
/** request buffer: the largest WRITE (header, write_in, data) with room to spare */
export const REQUEST_BUFFER = MAX_WRITE + 4096;

/** fuse_in_header field offsets */
export const InHeader = {
  LEN: 0,
  OPCODE: 4,
  UNIQUE: 8,
  NODEID: 16,
  UID: 24,
  GID: 28,
  PID: 32,
  TOTAL_EXTLEN: 36,
} as const;
