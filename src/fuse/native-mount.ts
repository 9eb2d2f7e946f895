/**
 * fuse-native, set up for a union filesystem.
 *
 * - `timeout: false`: the binding fails any request slower than 15 s by default (a large
 *   copy-up is slower than that).
 * - Mount options beyond the binding's list (use_ino, big_writes, max_write, negative_timeout,
 *   nonempty) go through an `_fuseOptions()` override.
 * - The patched addon (tools/patch-fuse-native.mjs) stores the caller's uid/gid/pid/umask at
 *   the start of the per-thread buffer each request arrives with; it is read here before the
 *   handler runs, so handlers can see who is calling (JS runs one handler entry at a time).
 * - utimens arrives with UTIME_NOW / UTIME_OMIT encoded as high word 0xffffffff.
 */
import Fuse from "fuse-native";

import { type Caller, ROOT_CALLER } from "../union/caller.js";

export type { Caller };

/** A time as the binding passes it to utimens: whole milliseconds, or UTIME_NOW / UTIME_OMIT. */
export type TimeSpec = { ms: number } | "now" | "omit";

export interface MountOptions {
  /** a mount without an upper: the kernel refuses writes itself */
  readOnly: boolean;
  /** allow_other + default_permissions: only root may ask for them */
  shared: boolean;
  /** seconds the kernel may cache entries and attributes */
  cacheTimeout: number;
  fsname: string;
  debug: boolean;
  extra: readonly string[];
}

export function mountOptionList(opts: MountOptions): string[] {
  const list = [
    `fsname=${opts.fsname.replaceAll(",", "\\,")}`,
    "subtype=unionfs",
    "use_ino",
    "big_writes",
    "max_write=131072",
    "max_read=131072",
    "kernel_cache",
    // open(O_TRUNC) arrives as one request, so copy-up can skip the data about to be dropped
    "atomic_o_trunc",
    "nonempty",
    `entry_timeout=${opts.cacheTimeout}`,
    `attr_timeout=${opts.cacheTimeout}`,
    `negative_timeout=${opts.cacheTimeout}`,
  ];
  if (opts.readOnly) list.push("ro");
  if (opts.shared) list.push("allow_other", "default_permissions");
  if (opts.debug) list.push("debug");
  list.push(...opts.extra);
  return list;
}

export class UnionFuse extends Fuse {
  /** the caller of the request whose handler is running now */
  caller: Caller = ROOT_CALLER;
  private readonly optionList: string[];

  constructor(mountpoint: string, ops: object, options: MountOptions) {
    super(mountpoint, ops, { timeout: false, force: false, mkdir: false });
    this.optionList = mountOptionList(options);
  }

  protected override _fuseOptions(): string {
    return `-o${this.optionList.join(",")}`;
  }

  protected override _makeHandlerArray(): ReturnType<Fuse["_makeHandlerArray"]> {
    return super._makeHandlerArray().map((handler) => {
      if (handler === undefined) return undefined;
      return (native: Buffer, opCode: number, ...args: unknown[]) => {
        this.caller = {
          uid: native.readUInt32LE(0),
          gid: native.readUInt32LE(4),
          pid: native.readUInt32LE(8),
          umask: native.readUInt32LE(12),
        };
        return handler(native, opCode, ...args);
      };
    });
  }

  protected override _op_utimens(
    signal: (res: number) => void,
    path: string,
    aLow: number,
    aHigh: number,
    mLow: number,
    mHigh: number,
  ): void {
    const utimens = this.ops.utimens as unknown as (
      p: string,
      a: TimeSpec,
      m: TimeSpec,
      cb: (e: number) => void,
    ) => void;
    utimens(path, decodeTime(aLow, aHigh), decodeTime(mLow, mHigh), (err) => signal(err));
  }

  protected _op_getxattr(signal: (res: number, ab: unknown) => void, path: string, name: string, buf: Buffer): void {
    replyGetxattr(this.ops.getxattr as unknown as XattrOp, signal, path, name, buf);
  }

  protected _op_listxattr(signal: (res: number, ab: unknown) => void, path: string, buf: Buffer): void {
    replyListxattr(this.ops.listxattr as unknown as ListXattrOp, signal, path, buf);
  }
}

type XattrOp = (path: string, name: string, position: number, cb: (err: number, value?: Buffer) => void) => void;
type ListXattrOp = (path: string, cb: (err: number, names?: string[]) => void) => void;

/**
 * getxattr/listxattr replies with the ERANGE check the binding lacks: it copies into the
 * kernel's buffer without looking at its size and reports the full length.
 */
export function replyGetxattr(
  op: XattrOp,
  signal: (res: number, ab: unknown) => void,
  path: string,
  name: string,
  buf: Buffer,
): void {
  op(path, name, 0, (err, value) => {
    if (err !== 0 || value === undefined) return signal(err === 0 ? -61 : err, buf.buffer);
    if (buf.length === 0) return signal(value.length, buf.buffer);
    if (value.length > buf.length) return signal(-34, buf.buffer);
    value.copy(buf);
    return signal(value.length, buf.buffer);
  });
}

export function replyListxattr(
  op: ListXattrOp,
  signal: (res: number, ab: unknown) => void,
  path: string,
  buf: Buffer,
): void {
  op(path, (err, names) => {
    if (err !== 0 || names === undefined) return signal(err, buf.buffer);
    const encoded = Buffer.concat(names.map((n) => Buffer.from(`${n}\0`)));
    if (buf.length === 0) return signal(encoded.length, buf.buffer);
    if (encoded.length > buf.length) return signal(-34, buf.buffer);
    encoded.copy(buf);
    return signal(encoded.length, buf.buffer);
  });
}

function decodeTime(low: number, high: number): TimeSpec {
  if (high === 0xffffffff) return low === 0 ? "now" : "omit";
  return { ms: low + high * 4294967296 };
}

export function mountAsync(fuse: UnionFuse): Promise<void> {
  return new Promise((resolve, reject) => fuse.mount((err) => (err ? reject(err) : resolve())));
}

export function unmountAsync(fuse: UnionFuse): Promise<void> {
  return new Promise((resolve, reject) => fuse.unmount((err) => (err ? reject(err) : resolve())));
}
