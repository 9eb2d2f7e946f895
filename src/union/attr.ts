/**
 * The attributes a union object reports: the real object's, with the union's inode number and
 * the link count overlayfs reports for merged directories (1: the real count is unknowable).
 */
import type { BigIntStats } from "node:fs";

export interface Attr {
  ino: bigint;
  mode: number;
  nlink: number;
  uid: number;
  gid: number;
  rdev: number;
  size: bigint;
  blocks: bigint;
  blksize: number;
  atimeNs: bigint;
  mtimeNs: bigint;
  ctimeNs: bigint;
}

export function attrFromStat(st: BigIntStats, ino: bigint, merged: boolean): Attr {
  return {
    ino,
    mode: Number(st.mode),
    nlink: merged ? 1 : Number(st.nlink),
    uid: Number(st.uid),
    gid: Number(st.gid),
    rdev: Number(st.rdev),
    size: st.size,
    blocks: st.blocks,
    blksize: Number(st.blksize),
    atimeNs: st.atimeNs,
    mtimeNs: st.mtimeNs,
    ctimeNs: st.ctimeNs,
  };
}
