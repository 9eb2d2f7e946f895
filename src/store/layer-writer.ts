/**
 * Applies the entries of one layer tar, in archive order, to a fresh directory that nothing else
 * writes to, producing overlayfs's upper format.
 *
 * Safety invariants (umoci / filepath-securejoin style; names from the archive are `unsafe`):
 * - Every path this writer has created is in `nodes` with its type. A parent component must be
 *   a directory there (made implicitly when missing); a symlink or file on the way is refused, so
 *   nothing is ever written through a symlink. Each parent directory is additionally opened once
 *   with openat2(RESOLVE_BENEATH | RESOLVE_NO_SYMLINKS) (lstat walk where openat2 is missing), so
 *   the kernel confirms it is a real directory inside the layer.
 * - Nothing is replaced: a path is created once (O_EXCL, mkdir, mknod, symlink, link all fail on
 *   an existing name, never follow one). A second entry for a path is refused, except a directory
 *   repeated as a directory, whose attributes the later entry replaces (image-spec "Changeset
 *   over existing files": "If the entry and the existing path are both directories, then the
 *   existing path's attributes MUST be replaced by those of the entry").
 * - Hard links name an earlier non-directory entry of this layer, nothing else.
 *
 * Whiteouts (image-spec "Whiteouts"): they "MUST only apply to resources in lower/parent layers",
 * and the opaque marker applies "regardless of the ordering in which the whiteout file was
 * encountered". So whiteouts and opaque markers are recorded and applied in `finish`, after all
 * entries: a `.wh.x` next to an `x` of the same layer never removes that `x`. In the upper
 * format `x` already hides a lower non-directory `x`; when `x` is a directory, the whiteout's
 * meaning (the lower `x` is gone) becomes "x is opaque". Only a whiteout with no same-layer `x`
 * is written (char device 0/0, or a `.wh.x` file in the "file" style).
 *
 * Directory attributes are applied last, deepest first, so creating children neither bumps a
 * recorded mtime nor runs into a read-only mode (directories are made 0700 until then).
 */
import { chmodSync, closeSync, constants as fsc, linkSync, lstatSync, mkdirSync, openSync, symlinkSync } from "node:fs";
import { isPrivateXattr, OPAQUE_YES, OverlayKey } from "../format/overlay-xattr.js";
import { OPAQUE_MARKER, WHITEOUT_PREFIX, whiteoutTarget } from "../format/whiteout.js";
import { type WhiteoutStyle, xattrNamespaceOf } from "../format/whiteout-style.js";
import { makedev } from "../sys/mknod.js";
import { openat2, openat2Supported, RESOLVE_BENEATH, RESOLVE_NO_SYMLINKS } from "../sys/openat2.js";
import { mayChown } from "../sys/privilege.js";
import { syncfs } from "../sys/syncfs.js";
import { cleanEntryPath, entryError, printable } from "./entry-path.js";
import { applyMeta, createEmpty, createNode, type NodeContext, setXattr, writeRegular } from "./node-ops.js";
import { type EntryMeta, entryMeta, isSparse, type TarHeader } from "./tar-header.js";

/** One entry as tar-stream's extract() yields it: its header and a stream of its data. */
export type TarEntry = AsyncIterable<Buffer> & { header: TarHeader };

type NodeKind = "dir" | "file" | "symlink" | "fifo" | "char" | "block";

const FILE_TYPES = new Set(["file", "contiguous-file"]);
const DEVICE_TYPES: Record<string, { kind: NodeKind; ifmt: number }> = {
  fifo: { kind: "fifo", ifmt: fsc.S_IFIFO },
  "character-device": { kind: "char", ifmt: fsc.S_IFCHR },
  "block-device": { kind: "block", ifmt: fsc.S_IFBLK },
};

export class LayerWriter {
  /** layer-relative path ("" is the root) -> what this writer made there */
  private readonly nodes = new Map<string, NodeKind>([["", "dir"]]);
  /** attributes of directories that had an entry (the last entry wins) */
  private readonly dirMeta = new Map<string, EntryMeta>();
  /** whited-out path -> the `.wh.` entry's attributes (for the "file" style) */
  private readonly whiteouts = new Map<string, EntryMeta>();
  private readonly opaqueMarkers = new Set<string>();
  private readonly verified = new Set<string>([""]);
  /** owners from the archive are applied only where this process may give files away */
  private readonly privileged = mayChown();
  private rootFd: number | null;

  constructor(
    readonly root: string,
    readonly style: WhiteoutStyle,
  ) {
    this.rootFd = openSync(root, fsc.O_RDONLY | fsc.O_DIRECTORY | fsc.O_NOFOLLOW);
  }

  /** Applies one entry and consumes its data. */
  async add(entry: TarEntry): Promise<void> {
    const header = entry.header;
    const unsafeName = header.name;
    if (header.type === "directory" && (header.size ?? 0) > 0) {
      throw hostile(unsafeName, "a directory entry carries data");
    }
    if (isSparse(header)) throw unsupported(unsafeName, "GNU sparse files are not supported");
    const components = cleanEntryPath(unsafeName);
    const base = components.at(-1);
    if (base === undefined) {
      if (header.type !== "directory") throw hostile(unsafeName, "the layer root must be a directory");
      this.dirMeta.set("", this.metaOf(header));
    } else if (base.startsWith(WHITEOUT_PREFIX)) {
      this.addWhiteout(header, components.slice(0, -1), base);
    } else {
      await this.addNode(entry, components);
    }
    for await (const _ of entry); // drain what the entry did not consume (non-files)
  }

  /** Writes the whiteouts and opaque markers, then directory attributes, then syncs the filesystem. */
  finish(): void {
    const opaque = new Set(this.opaqueMarkers);
    for (const [rel, meta] of this.whiteouts) {
      const kind = this.nodes.get(rel);
      if (kind === "dir") opaque.add(rel);
      if (kind === undefined) this.writeWhiteout(rel, meta);
    }
    const ns = xattrNamespaceOf(this.style);
    for (const rel of opaque) {
      setXattr(this.ctx(rel || "."), this.abs(rel), ns + OverlayKey.opaque, Buffer.from(OPAQUE_YES));
    }
    const dirs = [...this.nodes].filter(([, kind]) => kind === "dir").map(([rel]) => rel);
    dirs.sort((a, b) => depth(b) - depth(a));
    for (const rel of dirs) {
      const meta = this.dirMeta.get(rel);
      // Made implicitly for a child: the mode tar and containerd give such directories.
      if (meta === undefined) chmodSync(this.abs(rel), 0o755);
      else applyMeta(this.ctx(rel || "."), this.abs(rel), meta, false);
    }
    syncfs(this.fd());
  }

  close(): void {
    if (this.rootFd !== null) closeSync(this.rootFd);
    this.rootFd = null;
  }

  private async addNode(entry: TarEntry, components: string[]): Promise<void> {
    const { header } = entry;
    const name = header.name;
    const rel = components.join("/");
    const existing = this.nodes.get(rel);
    if (existing !== undefined) {
      if (existing === "dir" && header.type === "directory") {
        this.dirMeta.set(rel, this.metaOf(header));
        return;
      }
      throw hostile(name, "duplicate entry: an earlier entry of this layer has the same path");
    }
    this.makeParents(name, components.slice(0, -1));
    const abs = this.abs(rel);
    const type = header.type;
    if (type === null || type === undefined) throw unsupported(name, "unknown entry type");
    if (type === "directory") {
      mkdirSync(abs, 0o700);
      this.nodes.set(rel, "dir");
      this.dirMeta.set(rel, this.metaOf(header));
    } else if (FILE_TYPES.has(type)) {
      const meta = this.metaOf(header);
      this.nodes.set(rel, "file");
      await writeRegular(this.ctx(name), abs, entry, meta);
    } else if (type === "symlink") {
      const meta = this.metaOf(header);
      const target = header.linkname ?? "";
      if (target === "" || target.includes("\0")) throw hostile(name, "symlink without a valid target");
      symlinkSync(target, abs);
      this.nodes.set(rel, "symlink");
      applyMeta(this.ctx(name), abs, meta, true);
    } else if (type === "link") {
      const target = this.linkTarget(name, header.linkname ?? "");
      linkSync(this.abs(target.rel), abs);
      this.nodes.set(rel, target.kind);
    } else {
      const device = DEVICE_TYPES[type];
      if (device === undefined) throw unsupported(name, `entry type '${type}' is not supported`);
      const meta = this.metaOf(header);
      const dev = device.kind === "fifo" ? 0 : makedev(header.devmajor ?? 0, header.devminor ?? 0);
      createNode(this.ctx(name), abs, device.ifmt | 0o600, dev);
      this.nodes.set(rel, device.kind);
      applyMeta(this.ctx(name), abs, meta, false);
    }
  }

  private addWhiteout(header: TarHeader, parent: string[], base: string): void {
    const name = header.name;
    if (!FILE_TYPES.has(header.type ?? "")) throw hostile(name, "a whiteout entry must be a regular file");
    const meta = this.metaOf(header);
    this.makeParents(name, parent);
    const dirRel = parent.join("/");
    if (base === OPAQUE_MARKER) {
      if (this.opaqueMarkers.has(dirRel)) throw hostile(name, "duplicate entry: a second opaque marker");
      this.opaqueMarkers.add(dirRel);
      return;
    }
    const target = whiteoutTarget(base);
    // Other `.wh..wh.` names are AUFS bookkeeping (.wh..wh.plnk, .wh..wh.aufs): skipped, as
    // docker and containerd do.
    if (target === null) return;
    if (target === "." || target === "..") throw hostile(name, `a whiteout of '${target}'`);
    const rel = dirRel === "" ? target : `${dirRel}/${target}`;
    if (this.whiteouts.has(rel)) throw hostile(name, "duplicate entry: a second whiteout of the same name");
    this.whiteouts.set(rel, meta);
  }

  /** Ensures every parent exists as a directory made by this writer; refuses anything else. */
  private makeParents(name: string, parent: string[]): void {
    let rel = "";
    for (const component of parent) {
      rel = rel === "" ? component : `${rel}/${component}`;
      if (component.startsWith(WHITEOUT_PREFIX)) throw hostile(name, `'${rel}' is a whiteout name used as a directory`);
      const kind = this.nodes.get(rel);
      if (kind === undefined) {
        mkdirSync(this.abs(rel), 0o700);
        this.nodes.set(rel, "dir");
      } else if (kind === "symlink") {
        throw hostile(name, `parent '${rel}' is a symlink in this layer: refusing to write through it`);
      } else if (kind !== "dir") {
        throw hostile(name, `parent '${rel}' is not a directory in this layer`);
      }
    }
    this.verifyDir(name, rel);
  }

  /** The kernel's word that `rel` is a directory beneath the root, reached without symlinks. */
  private verifyDir(name: string, rel: string): void {
    if (this.verified.has(rel)) return;
    try {
      if (openat2Supported()) {
        closeSync(openat2(this.fd(), rel, fsc.O_RDONLY | fsc.O_DIRECTORY, 0, RESOLVE_BENEATH | RESOLVE_NO_SYMLINKS));
      } else {
        let prefix = "";
        for (const c of rel.split("/")) {
          prefix = prefix === "" ? c : `${prefix}/${c}`;
          if (!lstatSync(this.abs(prefix)).isDirectory()) throw new Error(`${prefix} is not a directory`);
        }
      }
    } catch (e) {
      throw hostile(name, `parent '${rel}' is not a plain directory inside the layer (${errText(e)})`);
    }
    this.verified.add(rel);
  }

  private linkTarget(name: string, unsafeTarget: string): { rel: string; kind: NodeKind } {
    const components = cleanEntryPath(unsafeTarget, `hard link '${printable(name)}' target`);
    const rel = components.join("/");
    const kind = components.length === 0 ? "dir" : this.nodes.get(rel);
    if (kind === undefined) {
      throw hostile(name, `hard link target '${printable(unsafeTarget)}' is not an earlier entry of this layer`);
    }
    if (kind === "dir") throw hostile(name, `hard link target '${printable(unsafeTarget)}' is a directory`);
    return { rel, kind };
  }

  private writeWhiteout(rel: string, meta: EntryMeta): void {
    const slash = rel.lastIndexOf("/");
    const whName = `${rel.slice(0, slash + 1)}${WHITEOUT_PREFIX}${rel.slice(slash + 1)}`;
    if (this.style === "chardev") {
      createNode(this.ctx(whName), this.abs(rel), fsc.S_IFCHR, makedev(0, 0), true);
      return;
    }
    createEmpty(this.abs(whName));
    applyMeta(this.ctx(whName), this.abs(whName), { ...meta, xattrs: new Map() }, false);
  }

  private metaOf(header: TarHeader): EntryMeta {
    const meta = entryMeta(header);
    for (const key of meta.xattrs.keys()) {
      if (isPrivateXattr(key)) throw hostile(header.name, `carries the overlay-private xattr ${key}`);
    }
    return meta;
  }

  private ctx(name: string): NodeContext {
    return { name, privileged: this.privileged };
  }

  private abs(rel: string): string {
    return rel === "" ? this.root : `${this.root}/${rel}`;
  }

  private fd(): number {
    if (this.rootFd === null) throw new Error("LayerWriter used after close");
    return this.rootFd;
  }
}

function depth(rel: string): number {
  return rel === "" ? 0 : rel.split("/").length;
}

function hostile(unsafeName: string, problem: string) {
  return entryError("hostile-entry", unsafeName, problem);
}

function unsupported(unsafeName: string, problem: string) {
  return entryError("unsupported", unsafeName, problem);
}

function errText(e: unknown): string {
  return e instanceof Error ? e.message : String(e);
}
