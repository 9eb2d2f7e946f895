/**
 * Normalised snapshots of a mounted tree, for differential tests (kernel overlayfs vs unionfs).
 *
 * A snapshot holds one record per object (lstat only: symlinks are never followed) and the raw
 * readdir listing of every directory ('.' and '..' included, with d_ino and d_type, read by
 * dents.py). Inode numbers are reported as the layer object they belong to ("L1:etc/passwd"):
 * layer i is the i-th of the layer roots given, topmost first. When both mounts use the same
 * layer directories this is exactly "st_ino equal to the kernel's"; when each side has its own
 * encoding of the same logical layers, it still says "the same object of the same layer".
 * When the layers span filesystems, a layer object's number is the one overlayfs reports with
 * `xino=on` (see xino.ts), which is why a snapshot needs to know the upper's filesystem.
 *
 * What the comparison leaves out, and why, is listed once, in IGNORED.
 */
import { execFile } from "node:child_process";
import { createHash } from "node:crypto";
import type { BigIntStats } from "node:fs";
import { constants as fsc } from "node:fs";
import { lstat, readFile, readlink, stat } from "node:fs/promises";
import { dirname, join } from "node:path";
import { fileURLToPath } from "node:url";
import { promisify } from "node:util";
import { errorCode } from "../errors.js";
import { major, minor } from "../sys/mknod.js";
import { lgetxattrAsync, llistxattrAsync } from "../sys/xattr.js";
import { type XinoMapping, xinoMapping } from "./xino.js";

const run = promisify(execFile);
const DENTS_PY = join(dirname(fileURLToPath(import.meta.url)), "dents.py");
const POOL = 32;

/**
 * Everything a snapshot or a comparison leaves out, with the reason. Nothing else is skipped.
 */
export const IGNORED = {
  atime: "reading changes it (relatime), and the two mounts are read at different moments",
  ctime: "no fixture can set it, and two encodings of one layer are written at different moments",
  subMillisecondTimes: "fuse-native carries times in whole milliseconds: mtimes are compared in ms",
  st_dev: "each mount has its own device number",
  st_blksize: "a transport property (FUSE reports its own), not a property of the object",
  readdirOrder: "the kernel returns the backing fs's hash order, unionfs sorts: listings are compared sorted",
  dirSizeAcrossEncodings:
    "a directory's st_size/st_blocks are its backing directory's and depend on the names stored in it " +
    "(`.wh.x` vs `x`): compared only when both sides mount the same layer directories",
  statfsFreeCounts:
    "free blocks and inodes change while other tests write to the same filesystem: compared within a tolerance",
  statfsType: "f_type is overlayfs's or FUSE's magic number, by design different",
  dotDotDino:
    "kernel overlayfs gives '..' in a merged directory the d_ino of the real parent in that directory's " +
    "topmost layer (L1's root for a directory whose topmost copy is in L1), not the merged parent's st_ino; " +
    "'..' is not compared across mounts, unionfs's is checked against lstat instead (direntConsistency)",
} as const;

export type FileType = "file" | "dir" | "symlink" | "fifo" | "char" | "block" | "socket";

export interface NodeRecord {
  type: FileType;
  /** permission bits, octal */
  mode: string;
  uid: number;
  gid: number;
  nlink: number;
  size: string;
  blocks: string;
  mtimeMs: string;
  ino: string;
  sha256?: string;
  target?: string;
  rdev?: string;
  /** name -> value (utf8 when printable, else hex:...) */
  xattrs: Record<string, string>;
}

export interface DirentRecord {
  name: string;
  ino: string;
  type: FileType | "unknown";
}

export interface Snapshot {
  readonly layers: readonly string[];
  /** path ("" for the root) -> record, or the errno code lstat failed with */
  readonly nodes: Map<string, NodeRecord | { error: string }>;
  /** directory path -> entries sorted by name, or the errno code reading it failed with */
  readonly listings: Map<string, DirentRecord[] | { error: string }>;
}

/** d_ino comes as a decimal string (see dents.py) */
type RawListing = Record<string, [string, string, number][] | { error: string }>;

/** Raw getdents listings of every directory below each root (see dents.py). */
async function listTrees(roots: readonly string[]): Promise<RawListing[]> {
  const { stdout } = await run("python3", [DENTS_PY, ...roots], { maxBuffer: 1 << 30 });
  return JSON.parse(stdout) as RawListing[];
}

/**
 * Inode number, as the overlay mount reports it -> "L<i>:<path>" for every object of every
 * layer; the first layer, and in it the first path in sorted order, wins (hard links). On the
 * layers' own filesystem d_ino is st_ino, so the getdents listing is all that is needed.
 */
export async function layerInodes(layers: readonly string[], upper?: string): Promise<Map<bigint, string>> {
  return inodeNames(layers, await listTrees(layers), await mappingFor(layers, upper));
}

/** The mapping from layer inode numbers to the mount's (see xino.ts). */
async function mappingFor(layers: readonly string[], upper: string | undefined): Promise<XinoMapping> {
  const dev = async (path: string) => (await stat(path, { bigint: true })).dev;
  return xinoMapping(await Promise.all(layers.map(dev)), upper === undefined ? null : await dev(upper));
}

function inodeNames(layers: readonly string[], trees: readonly RawListing[], xino: XinoMapping): Map<bigint, string> {
  const names = new Map<bigint, string>();
  for (const [i, tree] of trees.entries()) {
    const found: [string, string][] = [];
    for (const [dir, entries] of Object.entries(tree)) {
      if (!Array.isArray(entries)) throw new Error(`cannot list layer ${layers[i]}/${dir}: ${entries.error}`);
      for (const [name, ino] of entries) {
        if (name === "..") continue;
        found.push([name === "." ? dir || "." : dir === "" ? name : `${dir}/${name}`, ino]);
      }
    }
    found.sort(([a], [b]) => compareNames(a, b));
    for (const [path, raw] of found) {
      const ino = xino.lower(i, BigInt(raw));
      if (!names.has(ino)) names.set(ino, `L${i}:${path}`);
    }
  }
  return names;
}

export interface SnapshotOptions {
  /** objects whose content hash, link target and xattrs are read (default: all) */
  details?: (rel: string) => boolean;
  /**
   * the mounted stack's upper dir (or any path on its filesystem), if it has one: its
   * filesystem's objects keep their numbers when the layers span filesystems
   */
  upper?: string;
}

export async function snapshot(
  mountpoint: string,
  layers: readonly string[],
  options: SnapshotOptions = {},
): Promise<Snapshot> {
  // one python run lists the layers (for inode names) and the mount
  const trees = await listTrees([...layers, mountpoint]);
  const raw = trees.pop() ?? {};
  const inodes = inodeNames(layers, trees, await mappingFor(layers, options.upper));
  const inoName = (ino: bigint | string) => inodes.get(BigInt(ino)) ?? `unknown-ino:${ino}`;
  const listings = new Map<string, DirentRecord[] | { error: string }>();
  const paths = [""];
  for (const [dir, entries] of Object.entries(raw)) {
    if (!Array.isArray(entries)) {
      listings.set(dir, entries);
      continue;
    }
    const records = entries.map(([name, ino, dtype]) => ({ name, ino: inoName(ino), type: direntType(dtype) }));
    listings.set(
      dir,
      records.sort((a, b) => compareNames(a.name, b.name)),
    );
    for (const [name] of entries) if (name !== "." && name !== "..") paths.push(dir === "" ? name : `${dir}/${name}`);
  }
  const details = options.details ?? (() => true);
  const nodes = new Map<string, NodeRecord | { error: string }>();
  await pool(paths, async (rel) => {
    nodes.set(rel, await record(rel === "" ? mountpoint : join(mountpoint, rel), inoName, details(rel)));
  });
  return { layers, nodes: sortedMap(nodes), listings: sortedMap(listings) };
}

async function record(
  path: string,
  inoName: (ino: bigint) => string,
  details: boolean,
): Promise<NodeRecord | { error: string }> {
  let st: BigIntStats;
  try {
    st = await lstat(path, { bigint: true });
  } catch (e) {
    return { error: errorCode(e) ?? String(e) };
  }
  const type = fileType(Number(st.mode));
  const rec: NodeRecord = {
    type,
    mode: (Number(st.mode) & 0o7777).toString(8),
    uid: Number(st.uid),
    gid: Number(st.gid),
    nlink: Number(st.nlink),
    size: String(st.size),
    blocks: String(st.blocks),
    mtimeMs: String(st.mtimeNs / 1_000_000n),
    // Node reads bigint stats as signed 64-bit: an xino number with the top bit set comes out negative
    ino: inoName(BigInt.asUintN(64, st.ino)),
    xattrs: {},
  };
  if (type === "char" || type === "block") rec.rdev = `${major(Number(st.rdev))}:${minor(Number(st.rdev))}`;
  if (!details) return rec;
  try {
    if (type === "file")
      rec.sha256 = createHash("sha256")
        .update(await readFile(path))
        .digest("hex");
    if (type === "symlink") rec.target = await readlink(path);
    for (const name of (await llistxattrAsync(path)).sort()) {
      const value = await lgetxattrAsync(path, name);
      rec.xattrs[name] = value === null ? "<missing>" : showValue(value);
    }
  } catch (e) {
    return { ...rec, error: errorCode(e) ?? String(e) } as NodeRecord;
  }
  return rec;
}

/**
 * Differences between two snapshots, one readable line each; [] when they agree. `a` is the
 * oracle (kernel overlayfs), `b` the subject.
 */
export function compareSnapshots(a: Snapshot, b: Snapshot, names: [string, string] = ["kernel", "unionfs"]): string[] {
  const sameLayers = a.layers.length === b.layers.length && a.layers.every((l, i) => l === b.layers[i]);
  const out: string[] = [];
  const line = (where: string, what: string, vx: unknown, vy: unknown) =>
    out.push(abbreviate(`${where || "/"}: ${what}${names[0]}=${show(vx)} ${names[1]}=${show(vy)}`));
  for (const path of union(a.nodes.keys(), b.nodes.keys())) {
    const x = a.nodes.get(path);
    const y = b.nodes.get(path);
    if (x === undefined || y === undefined) {
      out.push(abbreviate(`${path || "/"}: only in ${x === undefined ? names[1] : names[0]}`));
      continue;
    }
    const isDir = "type" in x && x.type === "dir";
    for (const key of union(Object.keys(x), Object.keys(y))) {
      if (isDir && !sameLayers && (key === "size" || key === "blocks")) continue; // dirSizeAcrossEncodings
      const vx = (x as unknown as Record<string, unknown>)[key];
      const vy = (y as unknown as Record<string, unknown>)[key];
      if (show(vx) !== show(vy)) line(path, `${key} `, vx, vy);
    }
  }
  for (const dir of union(a.listings.keys(), b.listings.keys())) {
    const lx = a.listings.get(dir);
    const ly = b.listings.get(dir);
    if (lx === undefined || ly === undefined) {
      out.push(abbreviate(`readdir ${dir || "/"}: only in ${lx === undefined ? names[1] : names[0]}`));
      continue;
    }
    const x = listingMap(lx);
    const y = listingMap(ly);
    for (const name of union(x.keys(), y.keys())) {
      if (show(x.get(name)) !== show(y.get(name))) line(`readdir ${dir || "/"}`, `${name} `, x.get(name), y.get(name));
    }
  }
  return out;
}

/** Shortens path components of more than 40 characters (long-name tests) to keep lines readable. */
export function abbreviate(text: string): string {
  return text.replace(/[^/\s"=:]{41,}/gu, (c) => `${[...c].slice(0, 8).join("")}…[${Buffer.byteLength(c)} bytes]`);
}

function listingMap(listing: DirentRecord[] | { error: string }): Map<string, unknown> {
  if (!Array.isArray(listing)) return new Map([["(listing)", listing]]);
  const m = new Map<string, unknown>();
  for (const e of listing) {
    if (e.name === "..") continue; // dotDotDino
    m.set(e.name, { ino: e.ino, type: e.type });
  }
  return m;
}

/**
 * Within one snapshot: every entry's d_ino and d_type agree with what lstat says of the object
 * ('.' with the directory, '..' with its parent; the root's '..' lies outside the mount and is
 * not checked).
 */
export function direntConsistency(s: Snapshot): string[] {
  const out: string[] = [];
  for (const [dir, listing] of s.listings) {
    if (!Array.isArray(listing)) continue;
    for (const e of listing) {
      if (dir === "" && e.name === "..") continue;
      const target = e.name === "." ? dir : e.name === ".." ? parentOf(dir) : dir === "" ? e.name : `${dir}/${e.name}`;
      const node = s.nodes.get(target);
      if (node === undefined || !("type" in node)) {
        out.push(
          abbreviate(`${dir || "/"}: entry ${JSON.stringify(e.name)} is listed but lstat fails (${show(node)})`),
        );
        continue;
      }
      if (e.ino !== node.ino)
        out.push(abbreviate(`${dir || "/"}: ${JSON.stringify(e.name)} d_ino=${e.ino} st_ino=${node.ino}`));
      if (e.type !== node.type)
        out.push(abbreviate(`${dir || "/"}: ${JSON.stringify(e.name)} d_type=${e.type} type=${node.type}`));
    }
  }
  return out;
}

const show = (v: unknown) => (v === undefined ? "(none)" : JSON.stringify(v));

function parentOf(dir: string): string {
  const i = dir.lastIndexOf("/");
  return i < 0 ? "" : dir.slice(0, i);
}

function fileType(mode: number): FileType {
  switch (mode & fsc.S_IFMT) {
    case fsc.S_IFREG:
      return "file";
    case fsc.S_IFDIR:
      return "dir";
    case fsc.S_IFLNK:
      return "symlink";
    case fsc.S_IFIFO:
      return "fifo";
    case fsc.S_IFCHR:
      return "char";
    case fsc.S_IFBLK:
      return "block";
    default:
      return "socket";
  }
}

const DT_TYPES: Record<number, FileType> = {
  1: "fifo",
  2: "char",
  4: "dir",
  6: "block",
  8: "file",
  10: "symlink",
  12: "socket",
};

function direntType(dtype: number): FileType | "unknown" {
  return DT_TYPES[dtype] ?? "unknown";
}

function showValue(value: Buffer): string {
  const text = value.toString("utf8");
  return /^[\x20-\x7e]*$/.test(text) ? text : `hex:${value.toString("hex")}`;
}

function compareNames(a: string, b: string): number {
  return a < b ? -1 : a > b ? 1 : 0;
}

function union<T>(a: Iterable<T>, b: Iterable<T>): T[] {
  return [...new Set([...a, ...b])].sort() as T[];
}

function sortedMap<V>(m: Map<string, V>): Map<string, V> {
  return new Map([...m.entries()].sort(([a], [b]) => compareNames(a, b)));
}

async function pool<T>(items: readonly T[], fn: (item: T) => Promise<void>): Promise<void> {
  let next = 0;
  const worker = async () => {
    while (next < items.length) {
      const item = items[next++] as T;
      await fn(item);
    }
  };
  await Promise.all(Array.from({ length: Math.min(POOL, items.length) }, worker));
}
