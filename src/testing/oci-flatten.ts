/**
 * A reference for what an image's root filesystem is, written from the OCI image spec's
 * "Applying Changesets" and independent of src/store: the layer tars of an image archive are read
 * bottom to top with tar-stream and applied to a plain directory.
 *
 * - `.wh..wh..opq` in a directory removes the children that directory had from the layers below
 *   (never the ones the same layer adds), `.wh.NAME` removes NAME; removals of a layer are applied
 *   before its additions, so the order of entries inside a layer does not matter;
 * - every other entry is written with its mode, owner and mtime, replacing what was at its path
 *   (a non-directory replaces a directory entirely; a directory over a directory merges);
 * - directory metadata is applied last, deepest first, so adding children cannot disturb it.
 *
 * Also here: reading an image archive (docker save tar, gzip'd or not, or an OCI layout directory)
 * into its config and layers, and `viewLines`, the normalised description of a tree that the
 * end-to-end tests compare. Trusted input only (archives the tests built): names with `..` or an
 * absolute path, and writes through a symlink, are refused rather than handled.
 */
import { execFileSync } from "node:child_process";
import { createHash } from "node:crypto";
import {
  chmodSync,
  lchownSync,
  linkSync,
  lstatSync,
  lutimesSync,
  mkdirSync,
  readdirSync,
  readFileSync,
  rmSync,
  symlinkSync,
  writeFileSync,
} from "node:fs";
import { chmod, chown, readFile, utimes } from "node:fs/promises";
import { join, posix } from "node:path";
import { gunzipSync } from "node:zlib";
import tar from "tar-stream";

export interface ImageLayer {
  /** the blob as the archive stores it (maybe compressed) */
  blob: Buffer;
  mediaType: string;
  /** the uncompressed layer tar: its sha256 is the layer's DiffID */
  tar: Buffer;
}

export interface ArchiveImage {
  /** the tag the archive gives the image, if any */
  name: string | null;
  config: Record<string, unknown>;
  /** bottom first */
  layers: ImageLayer[];
}

interface TarEntry {
  header: tar.Header;
  data: Buffer;
}

export function sha256(data: Buffer | string): string {
  return `sha256:${createHash("sha256").update(data).digest("hex")}`;
}

const GZIP = Buffer.from([0x1f, 0x8b]);
const ZSTD = Buffer.from([0x28, 0xb5, 0x2f, 0xfd]);

/** A blob's uncompressed bytes: gzip via zlib, zstd via the `zstd` program, else as it is. */
export function uncompress(blob: Buffer): Buffer {
  if (blob.subarray(0, 2).equals(GZIP)) return gunzipSync(blob);
  if (blob.subarray(0, 4).equals(ZSTD)) return execFileSync("zstd", ["-dc"], { input: blob, maxBuffer: 1 << 30 });
  return blob;
}

export async function readTarEntries(bytes: Buffer): Promise<TarEntry[]> {
  const extract = tar.extract();
  const entries: TarEntry[] = [];
  const done = (async () => {
    for await (const entry of extract) {
      const parts: Buffer[] = [];
      for await (const chunk of entry) parts.push(chunk as Buffer);
      entries.push({ header: entry.header, data: Buffer.concat(parts) });
    }
  })();
  extract.end(bytes);
  await done;
  return entries;
}

/** The regular files of an image archive (a tar, maybe gzip'd, or a directory): name -> bytes. */
export async function readArchiveFiles(source: string): Promise<Map<string, Buffer>> {
  const files = new Map<string, Buffer>();
  if (lstatSync(source).isDirectory()) {
    for (const rel of readdirSync(source, { recursive: true }) as string[]) {
      if (lstatSync(join(source, rel)).isFile()) files.set(rel, readFileSync(join(source, rel)));
    }
    return files;
  }
  for (const { header, data } of await readTarEntries(uncompress(readFileSync(source)))) {
    if (header.type === "file") files.set(posix.normalize(header.name), data);
  }
  return files;
}

/** Config and layers of an archive: through index.json when there is one, else manifest.json. */
export function parseArchive(files: ReadonlyMap<string, Buffer>): ArchiveImage {
  const file = (name: string): Buffer => {
    const data = files.get(posix.normalize(name));
    if (data === undefined) throw new Error(`the archive has no ${name}`);
    return data;
  };
  const json = (name: string) => JSON.parse(file(name).toString("utf8")) as Record<string, unknown>;
  const blob = (digest: unknown) => `blobs/${String(digest).replace(":", "/")}`;
  if (files.has("index.json")) {
    const index = json("index.json") as { manifests: { digest: string; annotations?: Record<string, string> }[] };
    const top = index.manifests[0];
    if (top === undefined) throw new Error("index.json lists no manifests");
    const manifest = json(blob(top.digest)) as {
      config: { digest: string };
      layers: { digest: string; mediaType: string }[];
    };
    return {
      name: top.annotations?.["io.containerd.image.name"] ?? null,
      config: json(blob(manifest.config.digest)),
      layers: manifest.layers.map((d) => {
        const data = file(blob(d.digest));
        return { blob: data, mediaType: d.mediaType, tar: uncompress(data) };
      }),
    };
  }
  const [entry] = JSON.parse(file("manifest.json").toString("utf8")) as {
    Config: string;
    RepoTags?: string[];
    Layers: string[];
  }[];
  if (entry === undefined) throw new Error("manifest.json lists no images");
  return {
    name: entry.RepoTags?.[0] ?? null,
    config: json(entry.Config),
    layers: entry.Layers.map((path) => {
      const data = file(path);
      return { blob: data, mediaType: "application/vnd.docker.image.rootfs.diff.tar", tar: uncompress(data) };
    }),
  };
}

export async function readArchiveImage(source: string): Promise<ArchiveImage> {
  return parseArchive(await readArchiveFiles(source));
}

// --- flattening -----------------------------------------------------------------------------

const OPAQUE = ".wh..wh..opq";
const WHITEOUT = ".wh.";

interface DirMeta {
  mode: number;
  uid: number;
  gid: number;
  mtime: Date;
}

/** Writes the root filesystem of `source` (an image archive) into the empty directory `dest`. */
export async function flattenImage(source: string, dest: string): Promise<void> {
  const image = await readArchiveImage(source);
  await flattenLayers(
    image.layers.map((l) => l.tar),
    dest,
  );
}

/** Applies uncompressed layer tars, bottom first, to `dest`. */
export async function flattenLayers(tars: readonly Buffer[], dest: string): Promise<void> {
  const dirs = new Map<string, DirMeta>();
  const forget = (rel: string, self: boolean) => {
    for (const key of [...dirs.keys()]) if ((self && key === rel) || key.startsWith(`${rel}/`)) dirs.delete(key);
  };
  for (const bytes of tars) {
    const entries = (await readTarEntries(bytes)).map((e) => ({ ...e, rel: entryPath(e.header.name) }));
    for (const { rel } of entries) {
      const name = posix.basename(rel);
      const parent = posix.dirname(rel) === "." ? "" : posix.dirname(rel);
      if (name === OPAQUE) {
        for (const child of childrenOf(dest, parent)) rmSync(join(dest, parent, child), { recursive: true });
        forget(parent, false);
      } else if (name.startsWith(WHITEOUT)) {
        const gone = posix.join(parent, name.slice(WHITEOUT.length));
        refuseSymlinkParents(dest, gone);
        rmSync(join(dest, gone), { recursive: true, force: true });
        forget(gone, true);
      }
    }
    for (const entry of entries) {
      if (posix.basename(entry.rel).startsWith(WHITEOUT) || entry.rel === "") continue;
      writeEntry(dest, entry.rel, entry, dirs);
      if (entry.header.type !== "directory") forget(entry.rel, true);
    }
  }
  for (const [rel, meta] of [...dirs].sort(([a], [b]) => b.split("/").length - a.split("/").length)) {
    const path = join(dest, rel);
    await chown(path, meta.uid, meta.gid);
    await chmod(path, meta.mode);
    await utimes(path, meta.mtime, meta.mtime);
  }
}

function entryPath(unsafeName: string): string {
  if (unsafeName.startsWith("/")) throw new Error(`absolute entry name ${unsafeName}`);
  const parts = unsafeName.split("/").filter((c) => c !== "" && c !== ".");
  if (parts.includes("..")) throw new Error(`entry name with '..': ${unsafeName}`);
  return parts.join("/");
}

function childrenOf(dest: string, rel: string): string[] {
  try {
    return lstatSync(join(dest, rel)).isDirectory() ? readdirSync(join(dest, rel)) : [];
  } catch {
    return [];
  }
}

function refuseSymlinkParents(dest: string, rel: string): void {
  const parts = rel.split("/").slice(0, -1);
  for (let i = 1; i <= parts.length; i++) {
    const path = join(dest, ...parts.slice(0, i));
    let isLink = false;
    try {
      isLink = lstatSync(path).isSymbolicLink();
    } catch {
      return;
    }
    if (isLink) throw new Error(`refusing to write ${rel} through the symlink ${parts.slice(0, i).join("/")}`);
  }
}

function writeEntry(dest: string, rel: string, { header, data }: TarEntry, dirs: Map<string, DirMeta>): void {
  refuseSymlinkParents(dest, rel);
  const path = join(dest, rel);
  mkdirSync(join(path, ".."), { recursive: true, mode: 0o755 });
  const existing = lstatOrNull(path);
  const mtime = header.mtime ?? new Date(0);
  const uid = header.uid ?? 0;
  const gid = header.gid ?? 0;
  const mode = (header.mode ?? 0o644) & 0o7777;
  if (header.type === "directory") {
    if (existing !== null && !existing.isDirectory()) rmSync(path);
    if (existing === null || !existing.isDirectory()) mkdirSync(path, { mode: 0o755 });
    dirs.set(rel, { mode, uid, gid, mtime });
    return;
  }
  if (existing !== null) rmSync(path, { recursive: true });
  switch (header.type) {
    case "file":
    case "contiguous-file":
      writeFileSync(path, data);
      break;
    case "symlink":
      symlinkSync(header.linkname ?? "", path);
      break;
    case "link":
      linkSync(join(dest, entryPath(header.linkname ?? "")), path);
      return; // a hard link shares its target's metadata
    default:
      throw new Error(`the reference flattener does not handle ${header.type} entries (${rel})`);
  }
  lchownSync(path, uid, gid);
  if (header.type !== "symlink") chmodSync(path, mode); // after chown, which clears set-id bits
  lutimesSync(path, mtime, mtime);
}

function lstatOrNull(path: string) {
  try {
    return lstatSync(path);
  } catch {
    return null;
  }
}

// --- comparing trees ------------------------------------------------------------------------

/**
 * One sorted line per object below `root`, from `find -printf '%P %y %m %U %G %s'` plus whole-second
 * mtime, and the sha256 of a file's content or a symlink's target:
 *
 *   "etc/passwd f 644 0 0 82 1767225600 sha256:..."   "bin/sh l 777 0 0 7 1767225600 -> busybox"
 *
 * Ignored, with the reason:
 * - the root itself: a layer tar has no entry for it, so its metadata is whatever the extractor made;
 * - directory sizes: file system bookkeeping (ext4 rounds to blocks, tmpfs counts entries, FUSE
 *   reports what the daemon chooses), not content;
 * - atime, ctime, inode numbers, link counts, st_dev: no layer format carries them, and an
 *   overlay mount numbers inodes its own way;
 * - xattrs: the test images carry none.
 */
export async function viewLines(root: string): Promise<string[]> {
  const out = execFileSync("find", [root, "-mindepth", "1", "-printf", "%P\\0%y %m %U %G %s %T@\\0%l\\0"], {
    maxBuffer: 64 << 20,
    stdio: ["ignore", "pipe", "pipe"],
  });
  const fields = out.toString("utf8").split("\0");
  const lines: string[] = [];
  for (let i = 0; i + 2 < fields.length; i += 3) {
    const rel = fields[i] as string;
    const [type, mode, uid, gid, size, mtime] = (fields[i + 1] as string).split(" ");
    const seconds = Math.floor(Number(mtime));
    let what = "";
    if (type === "f") what = sha256(await readFile(join(root, rel)));
    else if (type === "l") what = `-> ${fields[i + 2]}`;
    lines.push(`${rel} ${type} ${mode} ${uid} ${gid} ${type === "d" ? "-" : size} ${seconds} ${what}`.trimEnd());
  }
  return lines.sort();
}
