/**
 * Conversions from union attributes to the shapes fuse-native marshals (times in ms; st_ino as
 * a bigint, which the patched binding splits into two 32-bit words).
 */
import type { Attr } from "../union/attr.js";
import type { StatFs } from "../union/union-fs.js";

export interface NativeStat {
  mode: number;
  uid: number;
  gid: number;
  size: number;
  dev: number;
  nlink: number;
  ino: bigint;
  rdev: number;
  blksize: number;
  blocks: number;
  atime: number;
  mtime: number;
  ctime: number;
}

const NS_PER_MS = 1_000_000n;

export function toNativeStat(attr: Attr): NativeStat {
  return {
    mode: attr.mode,
    uid: attr.uid,
    gid: attr.gid,
    size: Number(attr.size),
    dev: 0,
    nlink: attr.nlink,
    ino: attr.ino,
    rdev: attr.rdev,
    blksize: attr.blksize,
    blocks: Number(attr.blocks),
    atime: Number(attr.atimeNs / NS_PER_MS),
    mtime: Number(attr.mtimeNs / NS_PER_MS),
    ctime: Number(attr.ctimeNs / NS_PER_MS),
  };
}

/** A readdir entry only needs st_ino and the type bits; libfuse 2.9 ignores the rest. */
export function direntStat(ino: bigint, mode: number): NativeStat {
  return {
    mode,
    uid: 0,
    gid: 0,
    size: 0,
    dev: 0,
    nlink: 1,
    ino,
    rdev: 0,
    blksize: 0,
    blocks: 0,
    atime: 0,
    mtime: 0,
    ctime: 0,
  };
}

export function toNativeStatfs(st: StatFs): Record<string, number> {
  return { ...st, favail: st.ffree, fsid: 0, flag: 0 };
}
