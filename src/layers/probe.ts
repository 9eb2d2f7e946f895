/**
 * What one layer says about one name, read in bytes: nothing, a whiteout, a directory and its
 * flags, or another object; and one layer directory's listing with its whiteouts resolved. The
 * one reader of the on-disk union encodings, for the store's walks (commit, diff) and, as the
 * core moves onto it, the union.
 *
 * A name is whatever bytes the file system holds, so nothing is lost to UTF-8 decoding.
 * Whiteouts: a character device 0/0, a `.wh.NAME` entry, or an empty file with an
 * `overlay.whiteout` xattr in a directory marked as holding such whiteouts. Opaque:
 * `overlay.opaque=y`, a `.wh..wh..opq` entry, or (AUFS) a directory next to its own `.wh.`
 * entry. trusted.overlay.* is read before user.overlay.*, as the kernel reads them. A name of
 * 252..255 bytes cannot have a `.wh.` sibling (it would pass NAME_MAX), so none is looked for.
 *
 * Never follows a symlink: objects are lstat'ed, and only what lstat called a directory is
 * listed or descended into.
 *
 * The calls are synchronous on purpose: a walk makes a few of them per object, and a thread-pool
 * hop for each costs several times the call itself (a commit of 20k small files: 0.9 s
 * synchronous, 3 to 6 s through fs/promises on a busy machine).
 */
import type { BigIntStats } from "node:fs";
import { lstatSync, readdirSync } from "node:fs";
import { hasCode } from "../errors.js";
import {
  isPrivateXattr,
  OPAQUE_XWHITEOUTS,
  OPAQUE_YES,
  OverlayKey,
  TRUSTED_OVERLAY,
  USER_OVERLAY,
} from "../format/overlay-xattr.js";
import { isCharDevWhiteout, mayBeXattrWhiteout, OPAQUE_MARKER, WHITEOUT_PREFIX } from "../format/whiteout.js";
import { NAME_MAX } from "../path/name.js";
import { lgetxattr, llistxattr } from "../sys/xattr.js";

export interface DirFlags {
  /** hides what the layers below hold at this path */
  readonly opaque: boolean;
  /** overlay.redirect: where the directory came from in the layers below (absolute, or a name) */
  readonly redirect: Buffer | null;
  /** children that are empty files with an overlay.whiteout xattr are whiteouts */
  readonly xwhiteouts: boolean;
}

export type Probe =
  | { readonly kind: "none" }
  | { readonly kind: "whiteout" }
  | { readonly kind: "dir"; readonly path: Buffer; readonly stat: BigIntStats; readonly flags: DirFlags }
  | { readonly kind: "other"; readonly path: Buffer; readonly stat: BigIntStats };

export type DirProbe = Extract<Probe, { kind: "dir" }>;

/** One entry of a layer directory; meta entries (`.wh.*`) are folded into whiteouts and flags. */
export interface LayerChild {
  readonly name: Buffer;
  readonly probe: Exclude<Probe, { kind: "none" }>;
}

export const NONE = { kind: "none" } as const satisfies Probe;
const WHITEOUT = { kind: "whiteout" } as const satisfies Probe;
const SLASH = 0x2f;
const WH = Buffer.from(WHITEOUT_PREFIX);
const MARKER = Buffer.from(OPAQUE_MARKER);

export function joinBytes(dir: Buffer, name: Buffer): Buffer {
  return dir.at(-1) === SLASH ? Buffer.concat([dir, name]) : Buffer.concat([dir, Buffer.of(SLASH), name]);
}

/** A Map/Set key for a byte name (latin1 maps bytes to code units one to one). */
export function nameKey(name: Buffer): string {
  return name.toString("latin1");
}

export function isMetaBytes(name: Buffer): boolean {
  return name.subarray(0, WH.length).equals(WH);
}

export function whiteoutName(name: Buffer): Buffer {
  return Buffer.concat([WH, name]);
}

/** `.wh.foo` -> `foo`; null for the opaque marker and the other `.wh..wh.` meta entries. */
function whiteoutTarget(name: Buffer): Buffer | null {
  if (!isMetaBytes(name)) return null;
  const target = name.subarray(WH.length);
  return target.length === 0 || isMetaBytes(target) ? null : target;
}

export function lstatOrNull(path: Buffer): BigIntStats | null {
  try {
    return lstatSync(path, { bigint: true });
  } catch (e) {
    if (hasCode(e, "ENOENT", "ENOTDIR")) return null;
    throw e;
  }
}

/** An overlay xattr's value from either namespace (trusted first), given the object's names. */
function overlayValue(path: Buffer, names: readonly string[], key: string): Buffer | null {
  for (const ns of [TRUSTED_OVERLAY, USER_OVERLAY]) {
    if (!names.includes(ns + key)) continue;
    const value = lgetxattr(path, ns + key);
    if (value !== null) return value;
  }
  return null;
}

/** The overlay-private xattr names on `path`. */
export function privateXattrNames(path: Buffer): string[] {
  return llistxattr(path).filter(isPrivateXattr);
}

export function readDirFlags(path: Buffer): DirFlags {
  const names = privateXattrNames(path);
  const opaqueValue = overlayValue(path, names, OverlayKey.opaque)?.toString("latin1") ?? null;
  return {
    opaque: opaqueValue === OPAQUE_YES || lstatOrNull(joinBytes(path, MARKER)) !== null,
    redirect: overlayValue(path, names, OverlayKey.redirect),
    xwhiteouts: opaqueValue === OPAQUE_XWHITEOUTS || overlayValue(path, names, OverlayKey.whiteouts) !== null,
  };
}

function isXattrWhiteout(path: Buffer): boolean {
  const names = privateXattrNames(path);
  return names.includes(TRUSTED_OVERLAY + OverlayKey.whiteout) || names.includes(USER_OVERLAY + OverlayKey.whiteout);
}

/** Classifies an object found by lstat; `siblingWhiteout` says whether `.wh.<name>` is next to it. */
function classify(path: Buffer, st: BigIntStats, parent: DirFlags, siblingWhiteout: boolean): LayerChild["probe"] {
  if (isCharDevWhiteout(st)) return WHITEOUT;
  if (st.isDirectory()) {
    const flags = readDirFlags(path);
    // AUFS: a directory and its own whiteout in one layer means "new directory, hide below".
    return { kind: "dir", path, stat: st, flags: siblingWhiteout ? { ...flags, opaque: true } : flags };
  }
  if (parent.xwhiteouts && mayBeXattrWhiteout(st) && isXattrWhiteout(path)) return WHITEOUT;
  return { kind: "other", path, stat: st };
}

/** What the layer directory `dir` (with flags `parent`) says about `name`. */
export function probeEntry(dir: Buffer, name: Buffer, parent: DirFlags): Probe {
  const path = joinBytes(dir, name);
  const st = lstatOrNull(path);
  const sibling = () => name.length <= NAME_MAX - WH.length && lstatOrNull(joinBytes(dir, whiteoutName(name))) !== null;
  if (st === null) return sibling() ? WHITEOUT : NONE;
  if (isCharDevWhiteout(st)) return WHITEOUT;
  return classify(path, st, parent, st.isDirectory() && sibling());
}

/**
 * The entries of one layer directory, unsorted: each object, and one whiteout per deleted name
 * whatever its encoding. A `.wh.NAME` next to a real NAME is not a separate whiteout (a
 * directory becomes opaque by it, anything else shadows the layers below anyway).
 */
export function listLayerDir(dir: Buffer, flags: DirFlags): LayerChild[] {
  const names = readdirSync(dir, { encoding: "buffer" });
  const present = new Set(names.map(nameKey));
  const out: LayerChild[] = [];
  for (const name of names) {
    if (isMetaBytes(name)) {
      const target = whiteoutTarget(name);
      if (target !== null && !present.has(nameKey(target))) out.push({ name: target, probe: WHITEOUT });
      continue;
    }
    const path = joinBytes(dir, name);
    const st = lstatOrNull(path);
    if (st === null) continue; // removed while we listed: as if never there
    out.push({ name, probe: classify(path, st, flags, present.has(nameKey(whiteoutName(name)))) });
  }
  return out;
}
