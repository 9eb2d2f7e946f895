/**
 * overlayfs's origin record (`trusted.overlay.origin`): the lower object's file handle and the
 * UUID of its filesystem, in the kernel's `struct ovl_fb` layout:
 *   u8 version (0) | u8 magic (0xfb) | u8 len | u8 flags | u8 type | u8 uuid[16] | fid bytes
 * flags 0 means little-endian (OVL_FH_FLAG_CPU_ENDIAN on x86). Written on copy-up so the kernel
 * and unionfs both keep reporting the lower object's st_ino after a remount.
 */
const VERSION = 0;
const MAGIC = 0xfb;
const HEADER = 21;
/** FILEID_INO32_GEN and FILEID_INO32_GEN_PARENT: the fid starts with the 32-bit inode number. */
const INO32_TYPES = new Set([1, 2]);

export interface Origin {
  type: number;
  uuid: Buffer;
  fid: Buffer;
}

export function encodeOrigin(origin: Origin): Buffer {
  const out = Buffer.alloc(HEADER + origin.fid.length);
  out.writeUInt8(VERSION, 0);
  out.writeUInt8(MAGIC, 1);
  out.writeUInt8(out.length, 2);
  out.writeUInt8(0, 3);
  out.writeUInt8(origin.type, 4);
  origin.uuid.copy(out, 5, 0, 16);
  origin.fid.copy(out, HEADER);
  return out;
}

export function decodeOrigin(raw: Buffer): Origin | null {
  if (raw.length < HEADER || raw[0] !== VERSION || raw[1] !== MAGIC || raw[2] !== raw.length) return null;
  return { type: raw.readUInt8(4), uuid: Buffer.from(raw.subarray(5, 21)), fid: Buffer.from(raw.subarray(HEADER)) };
}

/** The inode number a handle names, when the handle type carries it in the clear (ext4, xfs). */
export function originIno(origin: Origin): bigint | null {
  if (!INO32_TYPES.has(origin.type) || origin.fid.length < 8) return null;
  return BigInt(origin.fid.readUInt32LE(0));
}
