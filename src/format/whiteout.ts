/**
 * The on-disk encodings of "this name is deleted" and "this directory hides what is below".
 *
 * Read: a character device 0/0 (overlayfs), a `.wh.<name>` file (OCI / AUFS), or a zero-size
 * regular file with an `overlay.whiteout` xattr inside a directory marked as holding such
 * whiteouts (kernel >= 6.7). Opaque: `overlay.opaque=y` or a `.wh..wh..opq` entry.
 * Every `.wh.`-prefixed name is a meta entry and never shows in a listing.
 */
import type { BigIntStats, Stats } from "node:fs";

export const WHITEOUT_PREFIX = ".wh.";
export const OPAQUE_MARKER = ".wh..wh..opq";

/** Every `.wh.`-prefixed entry is union metadata, never user data. */
export function isMetaName(name: string): boolean {
  return name.startsWith(WHITEOUT_PREFIX);
}

/** `.wh.foo` -> `foo`; null for the opaque marker and other `.wh..wh.` meta entries. */
export function whiteoutTarget(name: string): string | null {
  if (!name.startsWith(WHITEOUT_PREFIX)) return null;
  const target = name.slice(WHITEOUT_PREFIX.length);
  if (target.length === 0 || target.startsWith(WHITEOUT_PREFIX)) return null;
  return target;
}

export function whiteoutFileName(name: string): string {
  return WHITEOUT_PREFIX + name;
}

/** The kernel's whiteout: a character device with device number 0/0. */
export function isCharDevWhiteout(st: Stats | BigIntStats): boolean {
  return st.isCharacterDevice() && Number(st.rdev) === 0;
}

/** Cheap pre-filter before reading xattrs: only empty regular files can be xattr whiteouts. */
export function mayBeXattrWhiteout(st: Stats | BigIntStats): boolean {
  return st.isFile() && Number(st.size) === 0;
}
