/**
 * What one layer says about one name, read in bytes: nothing, a whiteout, a directory and its
 * flags, or another object; and one layer directory's listing with its whiteouts resolved. The
 * one reader of the on-disk union encodings, for the store's walks (commit, diff) and the union
 * core's lookups and listings.
 *
 * A name is whatever bytes the file system holds, so nothing is lost to UTF-8 decoding: a
 * Buffer, or where a name is a key (and in the union core) a byte string, one char per byte
 * (`nameKey`).
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
import {
  isCharDevWhiteout,
  isMetaName,
  mayBeXattrWhiteout,
  OPAQUE_MARKER,
  WHITEOUT_PREFIX,
  whiteoutTarget as whiteoutTargetKey,
} from "../format/whiteout.js";
import { NAME_MAX } from "../path/name.js";
import type { PathLike } from "../sys/libc.js";
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
const NO_PREFIX = Buffer.alloc(0);

/** `dir/name` (`dir/<prefix>name` with a prefix), in one allocation: on every lookup's path. */
export function joinBytes(dir: Buffer, name: Buffer, prefix: Buffer = NO_PREFIX): Buffer {
  const at = dir.at(-1) === SLASH ? dir.length : dir.length + 1;
  const out = Buffer.allocUnsafe(at + prefix.length + name.length);
  dir.copy(out, 0);
  out[at - 1] = SLASH;
  prefix.copy(out, at);
  name.copy(out, at + prefix.length);
  return out;
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

/** lstat that turns "not there" into null: a miss is a value, not an exception (hot path). */
export function lstatOrNull(path: PathLike): BigIntStats | null {
  try {
    return lstatSync(path, { bigint: true, throwIfNoEntry: false }) ?? null;
  } catch (e) {
    if (hasCode(e, "ENOTDIR")) return null;
    throw e;
  }
}

/**
 * An overlay xattr's value from either namespace (trusted first, as the kernel reads them);
 * `names`, the object's private xattr names when already listed, spares reads of absent ones.
 */
export function overlayValue(path: PathLike, key: string, names?: readonly string[]): Buffer | null {
  for (const ns of [TRUSTED_OVERLAY, USER_OVERLAY]) {
    if (names !== undefined && !names.includes(ns + key)) continue;
    const value = lgetxattr(path, ns + key);
    if (value !== null) return value;
  }
  return null;
}

/** The overlay-private xattr names on `path`. */
export function privateXattrNames(path: PathLike): string[] {
  return llistxattr(path).filter(isPrivateXattr);
}

export function readDirFlags(path: Buffer): DirFlags {
  const names = privateXattrNames(path);
  const opaqueValue = overlayValue(path, OverlayKey.opaque, names)?.toString("latin1") ?? null;
  return {
    opaque: opaqueValue === OPAQUE_YES || lstatOrNull(joinBytes(path, MARKER)) !== null,
    redirect: overlayValue(path, OverlayKey.redirect, names),
    xwhiteouts: opaqueValue === OPAQUE_XWHITEOUTS || overlayValue(path, OverlayKey.whiteouts, names) !== null,
  };
}

function isXattrWhiteout(path: Buffer): boolean {
  const names = privateXattrNames(path);
  return names.includes(TRUSTED_OVERLAY + OverlayKey.whiteout) || names.includes(USER_OVERLAY + OverlayKey.whiteout);
}

/** Whether an object lstat found in a directory with flags `parent` is a whiteout. */
function isWhiteoutObject(path: Buffer, st: BigIntStats, parent: Pick<DirFlags, "xwhiteouts">): boolean {
  return isCharDevWhiteout(st) || (parent.xwhiteouts && mayBeXattrWhiteout(st) && isXattrWhiteout(path));
}

/**
 * Classifies an object found by lstat; `siblingWhiteout` says whether `.wh.<name>` is next to it
 * (asked only of a directory that is not opaque already).
 */
function classify(
  path: Buffer,
  st: BigIntStats,
  parent: Pick<DirFlags, "xwhiteouts">,
  siblingWhiteout: () => boolean,
): LayerChild["probe"] {
  if (st.isDirectory()) {
    const own = readDirFlags(path);
    // AUFS: a directory and its own whiteout in one layer means "new directory, hide below".
    const flags = !own.opaque && siblingWhiteout() ? { ...own, opaque: true } : own;
    return { kind: "dir", path, stat: st, flags };
  }
  if (isWhiteoutObject(path, st, parent)) return WHITEOUT;
  return { kind: "other", path, stat: st };
}

/** What the layer directory `dir` (of which only `xwhiteouts` matters) says about `name`. */
export function probeEntry(dir: Buffer, name: Buffer, parent: Pick<DirFlags, "xwhiteouts">): Probe {
  const path = joinBytes(dir, name);
  const st = lstatOrNull(path);
  const sibling = () => name.length <= NAME_MAX - WH.length && lstatOrNull(joinBytes(dir, name, WH)) !== null;
  if (st === null) return sibling() ? WHITEOUT : NONE;
  return classify(path, st, parent, sibling);
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
    out.push({ name, probe: classify(path, st, flags, () => present.has(nameKey(whiteoutName(name)))) });
  }
  return out;
}

/** One layer directory's names and the names it whites out, as byte strings (nameKey). */
export interface DirNames {
  readonly names: string[];
  readonly whiteouts: string[];
}

/**
 * The names in one layer directory, unsorted, without an lstat of each: only an entry whose
 * d_type says it may be a whiteout (a character device; an empty file where `flags` says the
 * directory holds xattr whiteouts) is looked at. Meta entries become the names they white out.
 * What a name with its own `.wh.` sibling means is left to the reader (probeEntry says it).
 */
export function listDirNames(dir: Buffer, flags: Pick<DirFlags, "xwhiteouts">): DirNames {
  const names: string[] = [];
  const whiteouts: string[] = [];
  // latin1 decodes each byte to one char: the names come out as byte strings, no Buffer each
  const entries = readdirSync(dir, { encoding: "latin1", withFileTypes: true });
  for (const entry of entries) {
    const name = entry.name;
    if (isMetaName(name)) {
      const target = whiteoutTargetKey(name);
      if (target !== null) whiteouts.push(target);
      continue;
    }
    if (entry.isCharacterDevice() || (flags.xwhiteouts && entry.isFile())) {
      const path = joinBytes(dir, Buffer.from(name, "latin1"));
      const st = lstatOrNull(path);
      if (st !== null && isWhiteoutObject(path, st, flags)) {
        whiteouts.push(name);
        continue;
      }
    }
    names.push(name);
  }
  return { names, whiteouts };
}
