/**
 * Extended attributes (l*xattr on paths without following a final symlink, f*xattr on fds).
 *
 * Semantics: a missing attribute (ENODATA) and a filesystem without xattrs (ENOTSUP/EOPNOTSUPP)
 * are return values (`null`, `[]`), everything else throws FsError. Values of any size are
 * read: first into a 4 KiB buffer, on ERANGE by probing the size and retrying (the value may
 * change in between, so this loops).
 *
 * Async variants run the call on a koffi worker thread. errno is thread-local and koffi cannot
 * hand back the worker's errno, so on failure (ret < 0) the async variant re-issues the same
 * operation synchronously to learn why. This is correct because a failed xattr syscall has no
 * effect: the sync retry is the only attempt that can take effect, so the outcome is exactly that
 * of one call made at retry time (if it now succeeds, that success is a true answer too). The
 * cost is a blocking call on failure, which for these syscalls is cheaper than a thread hop.
 */
import type { KoffiFunc } from "koffi";
import { FsError, fsErrorFromErrno } from "../errors.js";
import { callAsync, check, cpath, EOPNOTSUPP, ERRNO, errno, libc, type PathLike, pathText } from "./libc.js";

export const XATTR_CREATE = 1;
export const XATTR_REPLACE = 2;

const ENODATA = ERRNO.ENODATA ?? 61;
const ERANGE = ERRNO.ERANGE ?? 34;
const INITIAL_SIZE = 4096;
const MAX_ATTEMPTS = 16;

type P = string | Buffer;
const fns = {
  lgetxattr: libc.func("long lgetxattr(const char *path, const char *name, void *value, size_t size)") as KoffiFunc<
    (path: P, name: string, value: Buffer | null, size: number) => number
  >,
  fgetxattr: libc.func("long fgetxattr(int fd, const char *name, void *value, size_t size)") as KoffiFunc<
    (fd: number, name: string, value: Buffer | null, size: number) => number
  >,
  llistxattr: libc.func("long llistxattr(const char *path, void *list, size_t size)") as KoffiFunc<
    (path: P, list: Buffer | null, size: number) => number
  >,
  flistxattr: libc.func("long flistxattr(int fd, void *list, size_t size)") as KoffiFunc<
    (fd: number, list: Buffer | null, size: number) => number
  >,
  lsetxattr: libc.func(
    "int lsetxattr(const char *path, const char *name, const void *value, size_t size, int flags)",
  ) as KoffiFunc<(path: P, name: string, value: Buffer, size: number, flags: number) => number>,
  fsetxattr: libc.func(
    "int fsetxattr(int fd, const char *name, const void *value, size_t size, int flags)",
  ) as KoffiFunc<(fd: number, name: string, value: Buffer, size: number, flags: number) => number>,
  lremovexattr: libc.func("int lremovexattr(const char *path, const char *name)") as KoffiFunc<
    (path: P, name: string) => number
  >,
  fremovexattr: libc.func("int fremovexattr(int fd, const char *name)") as KoffiFunc<
    (fd: number, name: string) => number
  >,
};

/** One read attempt into `buf` (null: size probe); returns the syscall's result. */
type Reader = (buf: Buffer | null, size: number) => number;

// Sync calls are never concurrent on one thread, so they can share one scratch buffer.
const scratch = Buffer.alloc(INITIAL_SIZE);

/** Reads a variable-size result; null when errno is one of `missing`. */
function readGrowing(read: Reader, missing: number[], syscall: string, path?: PathLike): Buffer | null {
  const where = path === undefined ? undefined : pathText(path);
  let buf = scratch;
  for (let attempt = 0; attempt < MAX_ATTEMPTS; attempt++) {
    const n = read(buf, buf.length);
    if (n >= 0) return Buffer.from(buf.subarray(0, n));
    let e = errno();
    if (e === ERANGE) {
      // Too small: ask for the current size, then retry with room for it.
      const size = read(null, 0);
      if (size >= 0) {
        buf = Buffer.alloc(Math.max(size, buf.length));
        continue;
      }
      e = errno();
    }
    if (missing.includes(e)) return null;
    throw fsErrorFromErrno(e, syscall, where);
  }
  throw new FsError("ERANGE", syscall, where, "value keeps growing");
}

function splitNames(list: Buffer | null): string[] {
  if (list === null) return [];
  return list
    .toString("utf8")
    .split("\0")
    .filter((n) => n !== "");
}

export function lgetxattr(path: PathLike, name: string): Buffer | null {
  const p = cpath(path, "lgetxattr");
  return readGrowing((b, s) => fns.lgetxattr(p, name, b, s), [ENODATA, EOPNOTSUPP], "lgetxattr", path);
}

export function fgetxattr(fd: number, name: string): Buffer | null {
  return readGrowing((b, s) => fns.fgetxattr(fd, name, b, s), [ENODATA, EOPNOTSUPP], "fgetxattr");
}

export function llistxattr(path: PathLike): string[] {
  const p = cpath(path, "llistxattr");
  return splitNames(readGrowing((b, s) => fns.llistxattr(p, b, s), [EOPNOTSUPP], "llistxattr", path));
}

export function flistxattr(fd: number): string[] {
  return splitNames(readGrowing((b, s) => fns.flistxattr(fd, b, s), [EOPNOTSUPP], "flistxattr"));
}

export function lsetxattr(path: PathLike, name: string, value: Buffer, flags = 0): void {
  check(fns.lsetxattr(cpath(path, "lsetxattr"), name, value, value.length, flags), "lsetxattr", path);
}

export function fsetxattr(fd: number, name: string, value: Buffer, flags = 0): void {
  check(fns.fsetxattr(fd, name, value, value.length, flags), "fsetxattr");
}

export function lremovexattr(path: PathLike, name: string): void {
  check(fns.lremovexattr(cpath(path, "lremovexattr"), name), "lremovexattr", path);
}

export function fremovexattr(fd: number, name: string): void {
  check(fns.fremovexattr(fd, name), "fremovexattr");
}

export async function lgetxattrAsync(path: PathLike, name: string): Promise<Buffer | null> {
  const p = cpath(path, "lgetxattr");
  const buf = Buffer.alloc(INITIAL_SIZE); // per call: async calls may overlap
  const n = await callAsync(fns.lgetxattr, p, name, buf, buf.length);
  if (n >= 0) return Buffer.from(buf.subarray(0, n));
  return lgetxattr(path, name); // errno is unknown here: see the header
}

export async function llistxattrAsync(path: PathLike): Promise<string[]> {
  const p = cpath(path, "llistxattr");
  const buf = Buffer.alloc(INITIAL_SIZE);
  const n = await callAsync(fns.llistxattr, p, buf, buf.length);
  if (n >= 0) return splitNames(buf.subarray(0, n));
  return llistxattr(path);
}
