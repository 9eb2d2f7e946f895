/**
 * File-system operations as data, for differential tests: each can be printed (formatOp), and
 * applied with Node's fs (xattrs through src/sys) below a mount root (applyOp), which reports
 * "OK" or the errno code, plus a short digest for reads. Paths are mount-relative.
 */
import { createHash } from "node:crypto";
import {
  chmod,
  lchown,
  link,
  lutimes,
  mkdir,
  open,
  readFile,
  rename,
  rmdir,
  symlink,
  truncate,
  unlink,
} from "node:fs/promises";
import { join } from "node:path";
import { errorCode } from "../errors.js";
import { lremovexattr, lsetxattr } from "../sys/xattr.js";
import { Rng } from "./rng.js";

/** Data is kept as its seed and length, so a printed op list stays short and replayable. */
export interface Data {
  len: number;
  seed: number;
}

export type Op =
  | { kind: "create"; path: string; mode: number; data: Data }
  | { kind: "create-trunc"; path: string; data: Data }
  | { kind: "write"; path: string; offset: number; data: Data }
  | { kind: "append"; path: string; data: Data }
  | { kind: "truncate"; path: string; size: number }
  | { kind: "read"; path: string }
  | { kind: "unlink"; path: string }
  | { kind: "mkdir"; path: string; mode: number }
  | { kind: "rmdir"; path: string }
  | { kind: "rename"; from: string; to: string }
  | { kind: "symlink"; target: string; path: string }
  | { kind: "link"; from: string; to: string }
  | { kind: "chmod"; path: string; mode: number }
  | { kind: "chown"; path: string; uid: number; gid: number }
  | { kind: "utimens"; path: string; atimeMs: number; mtimeMs: number }
  | { kind: "setxattr"; path: string; name: string; value: string; flags: number }
  | { kind: "removexattr"; path: string; name: string };

export type OpKind = Op["kind"];

/** Every path an operation names (sources and destinations); a symlink's target is not a path. */
export function opPaths(op: Op): string[] {
  if (op.kind === "rename" || op.kind === "link") return [op.from, op.to];
  return [op.path];
}

/** Operations that change nothing: reads. */
export const READ_ONLY_KINDS: ReadonlySet<OpKind> = new Set(["read"]);

export function dataBytes(d: Data): Buffer {
  return new Rng(d.seed).bytes(d.len);
}

const oct = (mode: number) => `0o${mode.toString(8)}`;
const q = (p: string) => JSON.stringify(p);

export function formatOp(op: Op): string {
  switch (op.kind) {
    case "create":
      return `create ${q(op.path)} mode=${oct(op.mode)} len=${op.data.len}`;
    case "create-trunc":
      return `create-trunc ${q(op.path)} len=${op.data.len}`;
    case "write":
      return `write ${q(op.path)} offset=${op.offset} len=${op.data.len}`;
    case "append":
      return `append ${q(op.path)} len=${op.data.len}`;
    case "truncate":
      return `truncate ${q(op.path)} size=${op.size}`;
    case "mkdir":
      return `mkdir ${q(op.path)} mode=${oct(op.mode)}`;
    case "rename":
      return `rename ${q(op.from)} -> ${q(op.to)}`;
    case "link":
      return `link ${q(op.from)} -> ${q(op.to)}`;
    case "symlink":
      return `symlink ${q(op.path)} -> ${q(op.target)}`;
    case "chmod":
      return `chmod ${q(op.path)} ${oct(op.mode)}`;
    case "chown":
      return `lchown ${q(op.path)} ${op.uid}:${op.gid}`;
    case "utimens":
      return `lutimes ${q(op.path)} atime=${op.atimeMs}ms mtime=${op.mtimeMs}ms`;
    case "setxattr":
      return `setxattr ${q(op.path)} ${op.name}=${q(op.value)} flags=${op.flags}`;
    case "removexattr":
      return `removexattr ${q(op.path)} ${op.name}`;
    default:
      return `${op.kind} ${q(op.path)}`;
  }
}

/**
 * Explicit times are whole milliseconds plus 2 µs, so that the value Node passes as a double
 * still floors to the intended millisecond on every path (the kernel keeps nanoseconds, the
 * FUSE binding carries milliseconds); comparisons look at whole milliseconds only.
 */
export function explicitSeconds(ms: number): number {
  return ms / 1000 + 2e-6;
}

export interface Outcome {
  /** "OK" or an errno code such as "ENOENT" */
  code: string;
  /** for reads: a digest of what was read */
  value?: string;
}

export function formatOutcome(o: Outcome): string {
  return o.value === undefined ? o.code : `${o.code} ${o.value}`;
}

async function writeAt(abs: string, flags: string, data: Data, position: number | null): Promise<void> {
  const fh = await open(abs, flags, 0o644);
  try {
    const buf = dataBytes(data);
    if (buf.length > 0) await fh.write(buf, 0, buf.length, position);
  } finally {
    await fh.close();
  }
}

/** Applies `op` below `root` (a mount point) and reports how it went. */
export async function applyOp(root: string, op: Op): Promise<Outcome> {
  const p = (rel: string) => join(root, rel);
  try {
    switch (op.kind) {
      case "create": {
        const fh = await open(p(op.path), "wx", op.mode);
        try {
          const buf = dataBytes(op.data);
          if (buf.length > 0) await fh.write(buf, 0, buf.length, 0);
        } finally {
          await fh.close();
        }
        break;
      }
      case "create-trunc":
        await writeAt(p(op.path), "w", op.data, 0);
        break;
      case "write":
        await writeAt(p(op.path), "r+", op.data, op.offset);
        break;
      case "append":
        await writeAt(p(op.path), "a", op.data, null);
        break;
      case "truncate":
        await truncate(p(op.path), op.size);
        break;
      case "read": {
        const content = await readFile(p(op.path));
        return {
          code: "OK",
          value: `${content.length}:${createHash("sha256").update(content).digest("hex").slice(0, 12)}`,
        };
      }
      case "unlink":
        await unlink(p(op.path));
        break;
      case "mkdir":
        await mkdir(p(op.path), op.mode);
        break;
      case "rmdir":
        await rmdir(p(op.path));
        break;
      case "rename":
        await rename(p(op.from), p(op.to));
        break;
      case "symlink":
        await symlink(op.target, p(op.path));
        break;
      case "link":
        await link(p(op.from), p(op.to));
        break;
      case "chmod":
        await chmod(p(op.path), op.mode);
        break;
      case "chown":
        await lchown(p(op.path), op.uid, op.gid);
        break;
      case "utimens":
        await lutimes(p(op.path), explicitSeconds(op.atimeMs), explicitSeconds(op.mtimeMs));
        break;
      case "setxattr":
        lsetxattr(p(op.path), op.name, Buffer.from(op.value), op.flags);
        break;
      case "removexattr":
        lremovexattr(p(op.path), op.name);
        break;
    }
    return { code: "OK" };
  } catch (e) {
    const code = errorCode(e);
    if (code === undefined) throw e;
    return { code };
  }
}
