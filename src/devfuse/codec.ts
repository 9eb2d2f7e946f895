/**
 * Encoding of the reply structures the union's answers travel in (attributes, entries, open
 * files, directory entries, statfs) into a reply buffer, and decoding of request fields. The
 * union's values are bigints where they may exceed 2^53 (st_ino, sizes, times in ns); offsets,
 * lengths and handles the kernel sends are read as numbers (below 2^53 on every real file).
 */
import type { Attr } from "../union/attr.js";
import type { StatFs } from "../union/union-fs.js";
import { Size } from "./protocol.js";

const NS_PER_S = 1_000_000_000n;

/** A u64 field the kernel sends, as a number (offsets, sizes, handles). */
export function readU64(buf: Buffer, at: number): number {
  return buf.readUInt32LE(at) + buf.readUInt32LE(at + 4) * 0x1_0000_0000;
}

export function writeU64(buf: Buffer, at: number, value: number): void {
  buf.writeUInt32LE(value >>> 0, at);
  buf.writeUInt32LE(Math.floor(value / 0x1_0000_0000) >>> 0, at + 4);
}

/**
 * The NUL-terminated name at `at`, as a byte string (see ByteName), or decoded as UTF-8 for an
 * xattr name (the core hands those to the xattr calls as text); `end` is past its NUL.
 */
export function readName(
  buf: Buffer,
  at: number,
  limit: number,
  encoding: "latin1" | "utf8" = "latin1",
): { name: string; end: number } {
  let nul = buf.indexOf(0, at);
  if (nul < 0 || nul >= limit) nul = limit;
  return { name: buf.toString(encoding, at, nul), end: nul + 1 };
}

function writeTime(buf: Buffer, secAt: number, nsecAt: number, ns: bigint): void {
  let sec = ns / NS_PER_S;
  let rest = ns % NS_PER_S;
  if (rest < 0n) {
    rest += NS_PER_S;
    sec -= 1n;
  }
  buf.writeBigInt64LE(sec, secAt);
  buf.writeUInt32LE(Number(rest), nsecAt);
}

/** fuse_attr (88 bytes) at `at`. */
export function writeAttr(buf: Buffer, at: number, attr: Attr): void {
  buf.writeBigUInt64LE(attr.ino, at);
  buf.writeBigUInt64LE(attr.size, at + 8);
  buf.writeBigUInt64LE(attr.blocks, at + 16);
  writeTime(buf, at + 24, at + 48, attr.atimeNs);
  writeTime(buf, at + 32, at + 52, attr.mtimeNs);
  writeTime(buf, at + 40, at + 56, attr.ctimeNs);
  buf.writeUInt32LE(attr.mode >>> 0, at + 60);
  buf.writeUInt32LE(attr.nlink >>> 0, at + 64);
  buf.writeUInt32LE(attr.uid >>> 0, at + 68);
  buf.writeUInt32LE(attr.gid >>> 0, at + 72);
  buf.writeUInt32LE(attr.rdev >>> 0, at + 76);
  buf.writeUInt32LE(attr.blksize >>> 0, at + 80);
  buf.writeUInt32LE(0, at + 84);
}

/**
 * fuse_entry_out (128 bytes) at `at`: `nodeid` 0 with no attributes is a negative entry (the
 * kernel caches the name's absence for `validS`).
 */
export function writeEntry(buf: Buffer, at: number, nodeid: bigint, attr: Attr | null, validS: number): void {
  buf.fill(0, at, at + Size.ENTRY_OUT);
  buf.writeBigUInt64LE(nodeid, at);
  writeU64(buf, at + 16, validS);
  writeU64(buf, at + 24, validS);
  if (attr !== null) writeAttr(buf, at + 40, attr);
}

/** fuse_attr_out (104 bytes) at `at`. */
export function writeAttrOut(buf: Buffer, at: number, attr: Attr, validS: number): void {
  writeU64(buf, at, validS);
  buf.writeUInt32LE(0, at + 8);
  buf.writeUInt32LE(0, at + 12);
  writeAttr(buf, at + 16, attr);
}

/** fuse_open_out (16 bytes) at `at`. */
export function writeOpen(buf: Buffer, at: number, fh: number, openFlags: number, backingId = 0): void {
  writeU64(buf, at, fh);
  buf.writeUInt32LE(openFlags >>> 0, at + 8);
  buf.writeInt32LE(backingId, at + 12);
}

/** fuse_kstatfs (80 bytes) at `at`. */
export function writeStatfs(buf: Buffer, at: number, st: StatFs): void {
  buf.fill(0, at, at + Size.STATFS_OUT);
  writeU64(buf, at, st.blocks);
  writeU64(buf, at + 8, st.bfree);
  writeU64(buf, at + 16, st.bavail);
  writeU64(buf, at + 24, st.files);
  writeU64(buf, at + 32, st.ffree);
  buf.writeUInt32LE(st.bsize >>> 0, at + 40);
  buf.writeUInt32LE(st.namemax >>> 0, at + 44);
  buf.writeUInt32LE(st.frsize >>> 0, at + 48);
}

/** The size a fuse_dirent of a name of `nameLen` bytes takes, padded to 8. */
export function direntSize(nameLen: number): number {
  return (Size.DIRENT + nameLen + 7) & ~7;
}

/** fuse_dirent at `at`; returns its padded size. `type` is the S_IFMT bits of the mode. */
export function writeDirent(buf: Buffer, at: number, ino: bigint, next: number, name: string, mode: number): number {
  const nameLen = Buffer.byteLength(name, "latin1");
  const size = direntSize(nameLen);
  buf.writeBigUInt64LE(ino, at);
  writeU64(buf, at + 8, next);
  buf.writeUInt32LE(nameLen, at + 16);
  buf.writeUInt32LE((mode >>> 12) & 0o17, at + 20);
  buf.write(name, at + Size.DIRENT, "latin1");
  buf.fill(0, at + Size.DIRENT + nameLen, at + size);
  return size;
}
