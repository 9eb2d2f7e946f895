/**
 * The one handle on glibc, loaded once with koffi, and the errno plumbing every wrapper shares.
 *
 * Invariants:
 * - This directory is the only importer of koffi; `libc` is not re-exported from index.ts.
 * - errno is thread-local. `koffi.errno()` reads the JS thread's errno, so it is only meaningful
 *   right after a *synchronous* call on this thread: `check` must be the first thing done with a
 *   return value, before any other native call can clobber errno. Async (worker-thread) calls
 *   never see their errno; see xattr.ts for how those recover it.
 * - Paths are byte strings: a JS string is passed as UTF-8, a Buffer as its raw bytes (we append
 *   the NUL). An embedded NUL would silently truncate the path, so it is rejected with EINVAL.
 */
import koffi, { type KoffiFunc } from "koffi";
import { FsError, fsErrorFromErrno } from "../errors.js";

export const libc = koffi.load("libc.so.6");

/** A path argument: UTF-8 text or raw bytes (Linux file names are bytes). */
export type PathLike = string | Buffer;

export const AT_FDCWD = -100;

// Numeric errnos compared by number: on Linux ENOTSUP and EOPNOTSUPP share the value 95, so a
// name-based comparison would depend on which alias errnoName() happens to pick.
export const ERRNO = koffi.os.errno;
export const EOPNOTSUPP = ERRNO.EOPNOTSUPP ?? 95;

/** The calling thread's errno, as left by the last native call on it. */
export function errno(): number {
  return koffi.errno();
}

/** Throws FsError for a failed call (ret < 0, errno read immediately), else returns ret. */
export function check(ret: number, syscall: string, path?: PathLike): number {
  if (ret < 0) throw fsErrorFromErrno(koffi.errno(), syscall, path === undefined ? undefined : pathText(path));
  return ret;
}

/** The argument to hand koffi for a `const char *` path: a string, or a NUL-terminated Buffer. */
export function cpath(path: PathLike, syscall: string): string | Buffer {
  if (typeof path === "string") {
    if (path.includes("\0")) throw new FsError("EINVAL", syscall, path, "path contains a NUL byte");
    return path;
  }
  if (path.includes(0)) throw new FsError("EINVAL", syscall, pathText(path), "path contains a NUL byte");
  return Buffer.concat([path, NUL]);
}

/** Like cpath, but always bytes: for variadic calls whose argument type must be `void *`. */
export function cpathBytes(path: PathLike, syscall: string): Buffer {
  const p = cpath(path, syscall);
  return typeof p === "string" ? Buffer.from(`${p}\0`, "utf8") : p;
}

/** A path for error messages (lossy for non-UTF-8 bytes; never used to reach a file). */
export function pathText(path: PathLike): string {
  return typeof path === "string" ? path : path.toString("utf8");
}

const NUL = Buffer.from([0]);

/**
 * Runs `fn` on a koffi worker; resolves with its return value. When koffi's queue is full
 * (max_async_calls) the call is refused synchronously; we then resolve -1 so the caller takes
 * its synchronous path, which is correct, merely blocking. The worker's errno is lost, so a
 * caller learns why a call failed by repeating it synchronously: only calls for which that
 * repetition is harmless belong here.
 */
export function callAsync<A extends unknown[]>(fn: KoffiFunc<(...args: A) => number>, ...args: A): Promise<number> {
  return new Promise((resolve, reject) => {
    const done = (err: unknown, ret: number): void => {
      if (err) reject(err instanceof Error ? err : new Error(String(err)));
      else resolve(ret);
    };
    try {
      (fn.async as (...a: unknown[]) => void)(...args, done);
    } catch {
      resolve(-1);
    }
  });
}
