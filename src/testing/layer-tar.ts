/**
 * Helpers for tests of layer tars: write a changeset into memory, read a tar back entry by
 * entry (tar-stream, the reader the store itself uses), and describe a directory tree as sorted
 * text lines so two trees (a mount, an extracted layer) can be compared with one `toEqual`.
 *
 * What treeLines records per object: path, type, permission bits, owner, mtime in whole seconds
 * (layer tars carry no more), size and sha256 for files, target for symlinks, device numbers,
 * and the xattrs that are not overlayfs's own. Not recorded: atime and ctime (no layer format
 * keeps them), st_ino/st_dev/nlink (an overlay mount numbers inodes its own way), directory
 * sizes (a file system's bookkeeping) and the root's mtime (a layer tar has no root entry).
 */
import { createHash } from "node:crypto";
import { lstat, readdir, readFile, readlink } from "node:fs/promises";
import { join } from "node:path";
import { Writable } from "node:stream";
import tar from "tar-stream";
import { isPrivateXattr } from "../format/overlay-xattr.js";
import { type ChangesetResult, writeChangeset } from "../store/changeset.js";
import { major, minor } from "../sys/mknod.js";
import { lgetxattr, llistxattr } from "../sys/xattr.js";

export interface TarItem {
  header: tar.Header;
  data: Buffer;
}

export interface WrittenChangeset extends ChangesetResult {
  bytes: Buffer;
}

/** Runs writeChangeset into memory. `highWaterMark` small forces the writer to wait for drains. */
export async function changesetBytes(
  upper: string,
  lowers: readonly string[] = [],
  highWaterMark?: number,
): Promise<WrittenChangeset> {
  const chunks: Buffer[] = [];
  const out = new Writable({
    highWaterMark,
    write(chunk: Buffer, _enc, done) {
      chunks.push(Buffer.from(chunk));
      if (highWaterMark === undefined) done();
      else setImmediate(done);
    },
  });
  const result = await writeChangeset(upper, lowers, out);
  out.end();
  return { ...result, bytes: Buffer.concat(chunks) };
}

export async function readTar(bytes: Buffer): Promise<TarItem[]> {
  const extract = tar.extract();
  const items: TarItem[] = [];
  const done = (async () => {
    for await (const entry of extract) {
      const parts: Buffer[] = [];
      for await (const chunk of entry) parts.push(chunk as Buffer);
      items.push({ header: entry.header, data: Buffer.concat(parts) });
    }
  })();
  extract.end(bytes);
  await done;
  return items;
}

/** The PAX records of the entry whose ustar block follows, raw: `key -> value bytes`, in order. */
export function rawPaxRecords(bytes: Buffer, entryName: string): Map<string, Buffer> {
  for (let at = 0; at + 512 <= bytes.length; ) {
    const block = bytes.subarray(at, at + 512);
    const size = Number.parseInt(block.toString("latin1", 124, 135), 8) || 0;
    const dataEnd = at + 512 + size;
    if (block[156] === 0x78 /* x */) {
      const records = parsePax(bytes.subarray(at + 512, dataEnd));
      const next = dataEnd + ((512 - (size % 512)) % 512);
      const path = records.get("path")?.toString("utf8") ?? cstring(bytes.subarray(next, next + 100));
      if (path === entryName) return records;
    }
    at = dataEnd + ((512 - (size % 512)) % 512);
  }
  return new Map();
}

function parsePax(data: Buffer): Map<string, Buffer> {
  const out = new Map<string, Buffer>();
  let rest = data;
  while (rest.length > 0) {
    const space = rest.indexOf(0x20);
    const length = Number.parseInt(rest.toString("latin1", 0, space), 10);
    const record = rest.subarray(space + 1, length - 1);
    const eq = record.indexOf(0x3d);
    out.set(record.toString("utf8", 0, eq), Buffer.from(record.subarray(eq + 1)));
    rest = rest.subarray(length);
  }
  return out;
}

function cstring(field: Buffer): string {
  const nul = field.indexOf(0);
  return field.toString("utf8", 0, nul < 0 ? field.length : nul);
}

/** One sorted line per object below `root` (see the module header for what is compared). */
export async function treeLines(root: string): Promise<string[]> {
  const lines: string[] = [];
  const visit = async (rel: string): Promise<void> => {
    const path = rel === "" ? root : join(root, rel);
    const st = await lstat(path);
    const mode = (st.mode & 0o7777).toString(8);
    const mtime = rel === "" ? "-" : String(Math.floor(st.mtimeMs / 1000));
    let what: string;
    if (st.isDirectory()) what = "dir";
    else if (st.isFile())
      what = `file ${st.size} ${createHash("sha256")
        .update(await readFile(path))
        .digest("hex")}`;
    else if (st.isSymbolicLink()) what = `symlink -> ${await readlink(path)}`;
    else if (st.isCharacterDevice()) what = `char ${major(st.rdev)},${minor(st.rdev)}`;
    else if (st.isBlockDevice()) what = `block ${major(st.rdev)},${minor(st.rdev)}`;
    else if (st.isFIFO()) what = "fifo";
    else what = "socket";
    const xattrs = llistxattr(path)
      .filter((n) => !isPrivateXattr(n))
      .sort()
      .map((n) => `${n}=${lgetxattr(path, n)?.toString("hex")}`);
    lines.push(`/${rel} ${what} ${mode} ${st.uid}:${st.gid} ${mtime} ${xattrs.join(",")}`.trimEnd());
    if (st.isDirectory()) for (const name of await readdir(path)) await visit(rel === "" ? name : join(rel, name));
  };
  await visit("");
  return lines.sort();
}
