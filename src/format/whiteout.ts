/**
 * The on-disk encodings of "this name is deleted" and "this directory hides what is below".
 *
 * Read: a character device 0/0 (overlayfs), a `.wh.<name>` file (OCI / AUFS), or a zero-size
 * regular file with an `overlay.whiteout` xattr inside a directory marked as holding such
 * whiteouts (kernel >= 6.7). Opaque: `overlay.opaque=y` or a `.wh..wh..opq` entry.
 * Every `.wh.`-prefixed name is a meta entry and never shows in a listing.
 */
import type { BigIntStats, Stats } from "node:fs";
import { FsError } from "../errors.js";

export const WHITEOUT_PREFIX = ".wh.";
export const OPAQUE_MARKER = ".wh..wh..opq";

/** Every `.wh.`-prefixed entry is union metadata, never user data. */
export function isMetaName(name: string): boolean {
  return name.startsWith(WHITEOUT_PREFIX);
}

/**
 * Refuses a `.wh.`-prefixed name for a new object (EINVAL, as fuse-overlayfs refuses it): in an
 * upper written with `.wh.` whiteouts it would delete its target and hide itself, in a store
 * layer and in an OCI tar it means exactly that, and the kernel, which ignores `.wh.` files,
 * would show it as a plain file where unionfs does not. Refused, such a name never reaches an
 * upper, so every upper unionfs writes reads the same to the kernel, to unionfs and to the store.
 */
export function refuseMetaName(name: string, syscall: string): void {
  if (isMetaName(name)) throw new FsError("EINVAL", syscall, name, "names starting with .wh. are reserved");
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
