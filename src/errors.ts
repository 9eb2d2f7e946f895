/**
 * Errno-shaped errors shared by every layer below the CLI.
 *
 * FsError has the shape of Node's own SystemError (`code`, `syscall`, `path`), so errors thrown
 * by node:fs pass through unwrapped and one `toErrno()` maps both to the negative errno a FUSE
 * reply carries. Codes are looked up in `os.constants.errno` by name, never taken from `.errno`
 * (libuv's numbering is not the kernel's on every platform).
 */
import { constants } from "node:os";

const ERRNO = constants.errno as Record<string, number>;

export class FsError extends Error {
  readonly code: string;
  readonly errno: number;
  readonly syscall: string;
  readonly path: string | undefined;

  constructor(code: string, syscall: string, path?: string, detail?: string) {
    const where = path === undefined ? "" : ` '${path}'`;
    super(`${code}: ${detail ?? code}, ${syscall}${where}`);
    this.name = "FsError";
    this.code = code;
    this.errno = ERRNO[code] ?? 0;
    this.syscall = syscall;
    this.path = path;
  }
}

/** Builds an FsError from a positive kernel errno number (as returned by libc calls). */
export function fsErrorFromErrno(errno: number, syscall: string, path?: string): FsError {
  return new FsError(errnoName(errno), syscall, path);
}

const NAME_BY_NUMBER = new Map<number, string>();
for (const [name, num] of Object.entries(ERRNO)) {
  // Keep the first name for aliases (EAGAIN before EWOULDBLOCK, EDEADLK before EDEADLOCK).
  if (!NAME_BY_NUMBER.has(num)) NAME_BY_NUMBER.set(num, name);
}

export function errnoName(errno: number): string {
  return NAME_BY_NUMBER.get(errno) ?? `E${errno}`;
}

/** The error's code if it is errno-shaped, else undefined. */
export function errorCode(e: unknown): string | undefined {
  if (typeof e === "object" && e !== null && "code" in e && typeof e.code === "string") {
    return e.code;
  }
  return undefined;
}

export function hasCode(e: unknown, ...codes: string[]): boolean {
  const code = errorCode(e);
  return code !== undefined && codes.includes(code);
}

export type Logger = (message: string) => void;

/**
 * Maps any thrown value to a negative errno for a FUSE reply. Unknown errors are logged and
 * become EIO: the daemon never dies on a handler bug.
 */
export function toErrno(e: unknown, log: Logger = defaultLog): number {
  const code = errorCode(e);
  if (code !== undefined) {
    const num = ERRNO[code];
    if (num !== undefined) return -num;
  }
  log(`unexpected error mapped to EIO: ${e instanceof Error ? (e.stack ?? e.message) : String(e)}`);
  return -(ERRNO.EIO ?? 5);
}

function defaultLog(message: string): void {
  process.stderr.write(`unionfs: ${message}\n`);
}

/** A user-facing failure: the CLI prints `message` as one line and exits non-zero. */
export class UserError extends Error {
  readonly exitCode: number;
  constructor(message: string, exitCode = 1) {
    super(message);
    this.name = "UserError";
    this.exitCode = exitCode;
  }
}
