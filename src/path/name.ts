/**
 * Validation of single path components arriving from FUSE or the CLI.
 *
 * A component is 1..255 bytes (NAME_MAX), holds no '/' or NUL, and is not '.' or '..'.
 * Lengths are counted in bytes, as the kernel counts them: a name is given as a byte string,
 * one char per byte (latin1), as the union core holds names, so its length is its byte count.
 */
import { FsError } from "../errors.js";

export const NAME_MAX = 255;
export const PATH_MAX = 4096;

export function checkName(name: string, syscall: string): void {
  if (name.length === 0 || name === "." || name === ".." || name.includes("/") || name.includes("\0")) {
    throw new FsError("EINVAL", syscall, name);
  }
  if (name.length > NAME_MAX) throw new FsError("ENAMETOOLONG", syscall, name);
}

/** Splits a mount-relative path ("/a/b" or "a/b") into components; "/" gives []. */
export function splitPath(path: string): string[] {
  return path.split("/").filter((c) => c.length > 0);
}

export function joinPath(parent: string, name: string): string {
  return parent === "" ? name : `${parent}/${name}`;
}

const NON_ASCII = /[\u0080-\uffff]/;

/**
 * A string of text as the byte string of its UTF-8 encoding (one char per byte): how a name
 * from an API that speaks UTF-8 text enters the union core. ASCII is the same either way.
 */
export function textToBytes(text: string): string {
  return NON_ASCII.test(text) ? Buffer.from(text, "utf8").toString("latin1") : text;
}

/** A byte string as text, decoding UTF-8 (bytes that are not UTF-8 become U+FFFD). */
export function bytesToText(bytes: string): string {
  return NON_ASCII.test(bytes) ? Buffer.from(bytes, "latin1").toString("utf8") : bytes;
}
