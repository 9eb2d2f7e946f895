/**
 * writeChangeset: an overlayfs-format upper directory (or an extracted layer) -> the OCI layer
 * tar of its changes, uncompressed, streamed to `out`; DiffID and size of exactly those bytes.
 *
 * The tar is a pure function of the tree (the same upper always gives the same DiffID), so a
 * commit can be exported and re-imported byte for byte:
 * - order: depth first; a directory's entry, then its `.wh..wh..opq` if it is opaque, then its
 *   children in bytewise order of their entry names (a whiteout sorts as `.wh.NAME`);
 * - headers: see tar-encode.ts (ustar + PAX, no uname/gname/atime/ctime); mtime truncated to
 *   the second; mode (with set-id and sticky bits), uid and gid as on disk; sockets skipped;
 * - whiteouts, in any encoding, become `.wh.NAME` and opaque directories get `.wh..wh..opq`
 *   (the kernel marks every directory created in a merged one opaque, so new directories have
 *   one too, as in docker's overlay2 diffs), both as empty regular files with mode 0, uid/gid 0
 *   and mtime 0: what containerd's ChangeWriter (and so BuildKit) writes for whiteouts since
 *   containerd 2.0; docker's overlay2 differ writes mode 0600 and the object's owner and times,
 *   which would make the tar depend on when and by whom something was deleted;
 * - xattrs become `SCHILY.xattr.<name>` records, except overlay-private ones, which never leave;
 * - hard links (same dev and inode) are stored once, later paths as Link entries to the first;
 * - a redirected directory (renamed through the mount) cannot be expressed as a rename in OCI:
 *   it is written opaque with its full merged content, read from the lowers at its old path.
 *
 * `out` is not ended: the caller owns it (writeTarFile ends a file, stdout must stay open). The
 * promise settles once `out` has accepted every byte.
 */
import { createHash } from "node:crypto";
import type { BigIntStats } from "node:fs";
import { closeSync, constants, openSync, readlinkSync, readSync } from "node:fs";
import type { Writable } from "node:stream";
import { isPrivateXattr, OverlayKey, TRUSTED_OVERLAY, USER_OVERLAY } from "../format/overlay-xattr.js";
import { OPAQUE_MARKER } from "../format/whiteout.js";
import { type MergedDir, mergedChildren, stackAt, upperChildDir } from "../layers/merge.js";
import { type LayerChild, listLayerDir, readDirFlags, whiteoutName } from "../layers/probe.js";
import { major, minor } from "../sys/mknod.js";
import { lgetxattr, llistxattr } from "../sys/xattr.js";
import { StoreError } from "./store-error.js";
import { END_OF_ARCHIVE, type EntryHeader, encodeHeader, padding, type TarType } from "./tar-encode.js";

export interface ChangesetResult {
  /** `sha256:<hex>` of the tar as written */
  diffId: string;
  /** bytes written */
  size: number;
}

const SLASH = Buffer.from("/");
const MARKER = Buffer.from(OPAQUE_MARKER);
/** Header of every whiteout and opaque marker: nothing in it depends on the tree or the clock. */
const META_HEADER = { type: "file", mode: 0, uid: 0, gid: 0, size: 0, mtime: 0 } as const;
const METACOPY = [TRUSTED_OVERLAY + OverlayKey.metacopy, USER_OVERLAY + OverlayKey.metacopy];
const READ_CHUNK = 256 * 1024;
const FLUSH_AT = 64 * 1024;

export async function writeChangeset(
  upper: string,
  lowers: readonly string[],
  out: Writable,
): Promise<ChangesetResult> {
  const sink = new DigestSink(out);
  try {
    const writer = new ChangesetWriter(
      sink,
      lowers.map((l) => Buffer.from(l)),
    );
    await writer.upperDir(writer.rootDir(Buffer.from(upper)), Buffer.alloc(0));
    return await sink.finish(END_OF_ARCHIVE);
  } finally {
    sink.release();
  }
}

/** An upper directory being written, with the lower directories it merges with. */
type UpperDir = MergedDir & { readonly upper: NonNullable<MergedDir["upper"]> };

class ChangesetWriter {
  /** "dev:ino" -> the entry name the object was first written under */
  private readonly links = new Map<string, Buffer>();

  constructor(
    private readonly sink: DigestSink,
    private readonly lowers: readonly Buffer[],
  ) {}

  /** The upper root, merged with the lowers' roots unless it is opaque. */
  rootDir(path: Buffer): UpperDir {
    const flags = readDirFlags(path);
    return { upper: { path, flags }, stack: flags.opaque ? [] : stackAt(this.lowers, 0, []) };
  }

  /**
   * An upper directory: overlayfs keeps exactly what changed there, so its entries are the diff.
   * Its lower stack is where a redirected child's old content is looked up.
   */
  async upperDir(dir: UpperDir, prefix: Buffer): Promise<void> {
    const { path, flags } = dir.upper;
    if (flags.opaque) await this.meta(Buffer.concat([prefix, MARKER]));
    const children = listLayerDir(path, flags);
    children.sort((a, b) => Buffer.compare(entryName(a), entryName(b)));
    for (const child of children) {
      const name = Buffer.concat([prefix, child.name]);
      const p = child.probe;
      if (p.kind === "whiteout") {
        await this.meta(Buffer.concat([prefix, whiteoutName(child.name)]));
        continue;
      }
      await this.object(name, p.path, p.stat);
      if (p.kind !== "dir") continue;
      const inner = Buffer.concat([name, SLASH]);
      const sub = { ...upperChildDir(this.lowers, dir, child.name, p), upper: { path: p.path, flags: p.flags } };
      if (p.flags.redirect !== null && !p.flags.opaque) {
        await this.meta(Buffer.concat([inner, MARKER]));
        await this.mergedDir(sub, inner);
      } else {
        await this.upperDir(sub, inner);
      }
    }
  }

  /** Everything a mount shows below a directory: used under a redirected directory. */
  private async mergedDir(dir: MergedDir, prefix: Buffer): Promise<void> {
    for (const child of mergedChildren(this.lowers, dir)) {
      const name = Buffer.concat([prefix, child.name]);
      await this.object(name, child.path, child.stat);
      if (child.dir !== null) await this.mergedDir(child.dir, Buffer.concat([name, SLASH]));
    }
  }

  /** A whiteout or opaque marker. */
  private async meta(name: Buffer): Promise<void> {
    await this.sink.write(encodeHeader({ ...META_HEADER, name }));
  }

  private async object(name: Buffer, path: Buffer, st: BigIntStats): Promise<void> {
    const type = tarType(st);
    if (type === null) return; // sockets: not representable, as in every image builder
    const base = {
      mode: Number(st.mode) & 0o7777,
      uid: Number(st.uid),
      gid: Number(st.gid),
      size: 0,
      mtime: wholeSeconds(st.mtimeNs),
    };
    if (type === "dir") {
      await this.sink.write(encodeHeader({ ...base, name: Buffer.concat([name, SLASH]), type, xattrs: xattrs(path) }));
      return;
    }
    if (st.nlink > 1n) {
      const key = `${st.dev}:${st.ino}`;
      const first = this.links.get(key);
      if (first !== undefined) {
        await this.sink.write(encodeHeader({ ...base, name, type: "link", linkname: first }));
        return;
      }
      this.links.set(key, name);
    }
    const header: EntryHeader = { ...base, name, type, xattrs: xattrs(path) };
    if (type === "symlink") header.linkname = readlinkSync(path, { encoding: "buffer" });
    if (type === "char" || type === "block") {
      header.devmajor = major(Number(st.rdev));
      header.devminor = minor(Number(st.rdev));
    }
    if (type !== "file") {
      await this.sink.write(encodeHeader(header));
      return;
    }
    header.size = Number(st.size);
    await this.sink.write(encodeHeader(header));
    await this.content(name, path, header.size);
  }

  /** Streams `size` bytes of a regular file, then the block padding. */
  private async content(name: Buffer, path: Buffer, size: number): Promise<void> {
    if (size === 0) return;
    // Synchronous reads: see layers/probe.ts; a chunk is a few hundred microseconds at most.
    const fd = openSync(path, constants.O_RDONLY | constants.O_NOFOLLOW);
    try {
      let left = size;
      while (left > 0) {
        const chunk = Buffer.allocUnsafe(Math.min(READ_CHUNK, left));
        const bytesRead = readSync(fd, chunk, 0, chunk.length, null);
        if (bytesRead === 0) {
          throw new StoreError("conflict", `'${name.toString()}' shrank while it was being written to the layer`, {
            path: path.toString(),
          });
        }
        await this.sink.write(bytesRead === chunk.length ? chunk : chunk.subarray(0, bytesRead));
        left -= bytesRead;
      }
    } finally {
      closeSync(fd);
    }
    await this.sink.write(padding(size));
  }
}

/** The name a child is written under, which is also what it sorts by. */
function entryName(child: LayerChild): Buffer {
  return child.probe.kind === "whiteout" ? whiteoutName(child.name) : child.name;
}

function tarType(st: BigIntStats): TarType | null {
  if (st.isFile()) return "file";
  if (st.isDirectory()) return "dir";
  if (st.isSymbolicLink()) return "symlink";
  if (st.isCharacterDevice()) return "char";
  if (st.isBlockDevice()) return "block";
  if (st.isFIFO()) return "fifo";
  return null;
}

/** floor(ns / 1e9): whole seconds, rounding down also before 1970. */
function wholeSeconds(ns: bigint): number {
  const s = ns / 1_000_000_000n;
  return Number(ns < 0n && s * 1_000_000_000n !== ns ? s - 1n : s);
}

/** The xattrs a layer carries for `path`: all but overlayfs's own, sorted by name. */
function xattrs(path: Buffer): Array<[string, Buffer]> {
  const names = llistxattr(path);
  if (names.some((n) => METACOPY.includes(n))) {
    // metacopy=on: the upper holds metadata only, the data is in a lower file we cannot name here
    throw new StoreError("unsupported", `'${path.toString()}' is an overlayfs metacopy file (metacopy=on)`, {
      path: path.toString(),
    });
  }
  const out: Array<[string, Buffer]> = [];
  for (const name of names.filter((n) => !isPrivateXattr(n)).sort()) {
    const value = lgetxattr(path, name);
    if (value !== null) out.push([name, value]);
  }
  return out;
}

/**
 * The tar's way out: hashes and counts every byte, batches small writes, and waits for `out`
 * to drain when it asks to. An error `out` emits fails the next write.
 */
class DigestSink {
  private readonly hash = createHash("sha256");
  private size = 0;
  private pending: Buffer[] = [];
  private pendingBytes = 0;
  private failure: Error | null = null;
  private readonly onError = (e: Error) => {
    this.failure ??= e;
  };

  constructor(private readonly out: Writable) {
    out.on("error", this.onError);
  }

  async write(chunk: Buffer): Promise<void> {
    if (chunk.length === 0) return;
    this.hash.update(chunk);
    this.size += chunk.length;
    this.pending.push(chunk);
    this.pendingBytes += chunk.length;
    if (this.pendingBytes >= FLUSH_AT) await this.flush();
  }

  private async flush(): Promise<void> {
    if (this.failure !== null) throw this.failure;
    if (this.pending.length === 0) return;
    const data = this.pending.length === 1 ? (this.pending[0] as Buffer) : Buffer.concat(this.pending);
    this.pending = [];
    this.pendingBytes = 0;
    if (!this.out.write(data)) await drained(this.out);
  }

  /** Writes `last` and everything pending, and waits until `out` has taken it all. */
  async finish(last: Buffer): Promise<ChangesetResult> {
    this.hash.update(last);
    this.size += last.length;
    const data = Buffer.concat([...this.pending, last]);
    this.pending = [];
    if (this.failure !== null) throw this.failure;
    await new Promise<void>((resolve, reject) => {
      this.out.write(data, (e) => (e ? reject(e) : resolve()));
    });
    return { diffId: `sha256:${this.hash.digest("hex")}`, size: this.size };
  }

  release(): void {
    this.out.off("error", this.onError);
  }
}

function drained(out: Writable): Promise<void> {
  return new Promise((resolve, reject) => {
    const settle = (e?: Error) => {
      out.off("drain", onDrain).off("error", onError).off("close", onClose);
      if (e === undefined) resolve();
      else reject(e);
    };
    const onDrain = () => settle();
    const onError = (e: Error) => settle(e);
    const onClose = () => settle(new Error("the output closed before the layer was written"));
    out.on("drain", onDrain).on("error", onError).on("close", onClose);
  });
}
