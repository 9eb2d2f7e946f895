/**
 * Validation of single path components arriving from FUSE or the CLI.
 *
 * A component is 1..255 bytes (NAME_MAX), holds no '/' or NUL, and is not '.' or '..'.
 * Lengths are counted in bytes, as the kernel counts them, not in UTF-16 units.
 */
import { FsError } from "../errors.js";

export const NAME_MAX = 255;
export const PATH_MAX = 4096;

export function checkName(name: string, syscall: string): void {
  if (name.length === 0 || name === "." || name === ".." || name.includes("/") || name.includes("\0")) {
    throw new FsError("EINVAL", syscall, name);
  }
  if (Buffer.byteLength(name) > NAME_MAX) throw new FsError("ENAMETOOLONG", syscall, name);
}

/** Splits a mount-relative path ("/a/b" or "a/b") into components; "/" gives []. */
export function splitPath(path: string): string[] {
  return path.split("/").filter((c) => c.length > 0);
}

export function joinPath(parent: string, name: string): string {
  return parent === "" ? name : `${parent}/${name}`;
}
