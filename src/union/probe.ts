/**
 * What one layer says about one name: nothing, a whiteout, a directory (maybe opaque), or
 * another object. This is the single place that reads the on-disk union encodings.
 *
 * Never follows a symlink: the object is lstat'ed, and its parent was itself reached through
 * probes that only descend into real directories.
 *
 * Probes are synchronous system calls. They read metadata the kernel almost always has cached,
 * where a synchronous lstat costs ~2 µs and the same call through fs.promises' thread pool
 * 57–77 µs (bench/micro/probe.mjs); a lookup through N layers makes up to 2N of them in a row.
 * Synchronous probes are also what the worker-thread transport of DESIGN.md will call.
 */
import type { BigIntStats } from "node:fs";
import { lstatSync } from "node:fs";
import { join } from "node:path";
import { hasCode } from "../errors.js";
import { OPAQUE_XWHITEOUTS, OPAQUE_YES, OverlayKey, TRUSTED_OVERLAY, USER_OVERLAY } from "../format/overlay-xattr.js";
import {
  isCharDevWhiteout,
  mayBeXattrWhiteout,
  OPAQUE_MARKER,
  WHITEOUT_PREFIX,
  whiteoutFileName,
} from "../format/whiteout.js";
import { parseRedirect } from "../layers/merge.js";
import { NAME_MAX } from "../path/name.js";
import { lgetxattr, llistxattr } from "../sys/xattr.js";

export type Probe =
  | { readonly kind: "none" }
  | { readonly kind: "whiteout" }
  | {
      readonly kind: "dir";
      readonly stat: BigIntStats;
      readonly opaque: boolean;
      /** overlay.redirect, validated: null when absent or refused (parseRedirect) */
      readonly redirect: DirRedirect | null;
      /** children that are empty files with an overlay.whiteout xattr are whiteouts */
      readonly xwhiteouts: boolean;
    }
  | { readonly kind: "other"; readonly stat: BigIntStats };

/** A directory's overlay.redirect: a path from the lower roots, or one name in the same parent. */
export interface DirRedirect {
  readonly absolute: boolean;
  /** exactly one for a relative redirect */
  readonly parts: readonly string[];
}

export const NONE: Probe = { kind: "none" };
export const WHITEOUT: Probe = { kind: "whiteout" };

/** lstat that turns "not there" into null (a lookup miss is a value, not an exception). */
export function lstatOrNull(path: string): BigIntStats | null {
  try {
    return lstatSync(path, { bigint: true, throwIfNoEntry: false }) ?? null;
  } catch (e) {
    if (hasCode(e, "ENOTDIR")) return null;
    throw e;
  }
}

/** Reads an overlay xattr from either namespace (trusted first, as the kernel prefers it). */
export function overlayXattr(path: string, key: string, names?: readonly string[]): string | null {
  for (const ns of [TRUSTED_OVERLAY, USER_OVERLAY]) {
    const name = ns + key;
    if (names !== undefined && !names.includes(name)) continue;
    const value = lgetxattr(path, name);
    if (value !== null) return value.toString("utf8");
  }
  return null;
}

/** Like overlayXattr, for binary values (origin file handles, redirects). */
export function overlayXattrRaw(path: string, key: string, names?: readonly string[]): Buffer | null {
  for (const ns of [TRUSTED_OVERLAY, USER_OVERLAY]) {
    if (names !== undefined && !names.includes(ns + key)) continue;
    const value = lgetxattr(path, ns + key);
    if (value !== null) return value;
  }
  return null;
}

function overlayXattrNames(path: string): string[] {
  const names = llistxattr(path);
  return names.filter((n) => n.startsWith(TRUSTED_OVERLAY) || n.startsWith(USER_OVERLAY));
}

/** Probes `dir/name` in one layer. `dirHoldsXattrWhiteouts` comes from the parent's probe. */
export function probeEntry(dir: string, name: string, dirHoldsXattrWhiteouts: boolean): Probe {
  const path = join(dir, name);
  const st = lstatOrNull(path);
  // A name of 252..255 bytes cannot have a `.wh.` sibling (it would exceed NAME_MAX).
  const siblingWhiteout = () =>
    Buffer.byteLength(name) <= NAME_MAX - WHITEOUT_PREFIX.length &&
    lstatOrNull(join(dir, whiteoutFileName(name))) !== null;
  if (st === null) return siblingWhiteout() ? WHITEOUT : NONE;
  if (isCharDevWhiteout(st)) return WHITEOUT;
  if (st.isDirectory()) {
    const probe = probeDir(path, st);
    // AUFS: a directory and its own whiteout in one layer means "new directory, hide below".
    if (!probe.opaque && siblingWhiteout()) return { ...probe, opaque: true };
    return probe;
  }
  if (dirHoldsXattrWhiteouts && mayBeXattrWhiteout(st)) {
    if (overlayXattr(path, OverlayKey.whiteout) !== null) return WHITEOUT;
  }
  return { kind: "other", stat: st };
}

export type DirProbe = Extract<Probe, { kind: "dir" }>;

/** Reads a directory's union flags: opaque (xattr or marker), redirect, xattr-whiteout mark. */
export function probeDir(path: string, st: BigIntStats): DirProbe {
  const names = overlayXattrNames(path);
  const opaqueValue = names.length > 0 ? overlayXattr(path, OverlayKey.opaque, names) : null;
  let opaque = opaqueValue === OPAQUE_YES;
  if (!opaque) opaque = lstatOrNull(join(path, OPAQUE_MARKER)) !== null;
  const redirect = names.length > 0 ? readRedirect(path, names) : null;
  const xwhiteouts =
    opaqueValue === OPAQUE_XWHITEOUTS || (names.length > 0 && overlayXattr(path, OverlayKey.whiteouts, names) !== null);
  return { kind: "dir", stat: st, opaque, redirect, xwhiteouts };
}

/** The overlay.redirect of the directory at `path`, null when it has none (or a refused one). */
export function redirectOf(path: string): DirRedirect | null {
  const names = overlayXattrNames(path);
  return names.length > 0 ? readRedirect(path, names) : null;
}

/** A directory's redirect (trusted.overlay.* first, as overlayfs prefers it); a refused value is none. */
function readRedirect(path: string, names: readonly string[]): DirRedirect | null {
  const value = overlayXattrRaw(path, OverlayKey.redirect, names);
  const parsed = value === null ? null : parseRedirect(value);
  if (parsed === null) return null;
  return { absolute: parsed.absolute, parts: parsed.parts.map((p) => p.toString("utf8")) };
}
