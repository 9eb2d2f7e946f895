/**
 * The merged view, driven by node-based operations as the kernel's FUSE protocol is: every
 * operation takes a node (or a parent node and a name). Transports (src/fuse) translate their
 * requests into these calls; nothing here knows about FUSE.
 *
 * Every operation is synchronous: system calls on metadata the kernel almost always has
 * cached cost a few µs, a thread-pool round trip tens, and a transport on worker threads
 * blocks anyway. The one long step, the data copy of a copy-up, is the transport's to place
 * (CopyUp's DataCopyMode); open files are raw fds, which the transport may also read and
 * write itself, off its event loop.
 *
 * Expected misses are values (`lookup` returns null); every other failure is thrown as an
 * errno-shaped error for the transport to turn into a reply.
 *
 * Names, symlink targets and the names of a listing are byte strings (ByteName, layer.ts): a
 * transport converts what its protocol carries to and from them. xattr names are plain strings.
 */
import {
  closeSync,
  fdatasyncSync,
  constants as fsc,
  fstatSync,
  fsyncSync,
  lstatSync,
  openSync,
  readlinkSync,
  readSync,
  statfsSync,
  writeSync,
} from "node:fs";

import { FsError, type Logger } from "../errors.js";
import { isPrivateXattr } from "../format/overlay-xattr.js";
import type { WhiteoutChoice, WhiteoutStyle } from "../format/whiteout-style.js";
import { readDirFlags } from "../layers/probe.js";
import { checkName, NAME_MAX } from "../path/name.js";
import { copyFileRange, seekData, seekHole } from "../sys/copy.js";
import { fallocate } from "../sys/fallocate.js";
import { RENAME_EXCHANGE } from "../sys/rename.js";
import { lgetxattr, llistxattr } from "../sys/xattr.js";
import { type Attr, attrFromStat } from "./attr.js";
import type { Caller } from "./caller.js";
import { CopyUp, type DataCopyMode } from "./copy-up.js";
import { createFile, makeDir, makeLink, makeNod, makeSymlink } from "./create-ops.js";
import { type DirEntry, DirStreams, type StreamEntry } from "./dir-streams.js";
import { type HandleTable, MapHandleTable, type OpenFile } from "./handles.js";
import { HardlinkIndex } from "./hardlink-index.js";
import { XinoMap } from "./inode-map.js";
import { type Branch, type ByteName, closeStack, type Layer, type LayerStack, realPath } from "./layer.js";
import { forgetDeepDirs } from "./layer-paths.js";
import { Listings } from "./listings.js";
import { nlinkOf, Resolver } from "./lookup.js";
import { LowerOpens } from "./lower-opens.js";
import { isDirNode, type LowerBranch, NodeTable, type UnionNode } from "./node-table.js";
import { OriginInodes } from "./origin-inodes.js";
import { OriginRecords } from "./origin-record.js";
import { DirMerger, LowerListings } from "./readdir.js";
import { removeDir, unlinkEntry } from "./remove-ops.js";
import { renameEntry } from "./rename-op.js";
import { type AttrChanges, killPrivileges, removexattrNode, setattrNode, setxattrNode } from "./setattr-ops.js";
import type { UnionContext, WriteSide } from "./union-context.js";
import { chooseWhiteoutStyle, UpperWriter } from "./upper-writer.js";
import { WorkDir } from "./work-dir.js";

/** How one thread's core runs; not part of the mount's prepared state. */
export interface CoreRuntime {
  /** where the core reports what it skipped (never a request's failure: those are errnos) */
  log?: Logger;
  /** how copy-up copies file data (default inline: on the calling thread) */
  dataCopy?: DataCopyMode;
  /**
   * how many nodes no one holds (no kernel reference, not open) to keep for lookups to find
   * again without a system call: a transport without forgets (fuse-native) keeps many
   */
  cachedNodes?: number;
  /** told of every copy-up (see CopyUpOptions.copiedUp) */
  copiedUp?: (node: UnionNode) => void;
}

export interface UnionOptions extends CoreRuntime {
  /** how whiteouts and opaque marks are written: "auto" picks chardev when mknod works */
  whiteout: WhiteoutChoice;
  /**
   * overlayfs's `volatile`: copy-up and fsync do not sync, trading crash safety for speed
   * (fuse-overlayfs never syncs a copy-up); the work dir is marked so it is not reused
   */
  volatile?: boolean;
}

/**
 * A stack readied for a mount (see UnionFs.prepare): plain data that can cross to a worker
 * thread, whose layer fds are valid in every thread of the process.
 */
export interface UnionSpec {
  readonly stack: LayerStack;
  /** the settled whiteout style; null without an upper */
  readonly whiteout: WhiteoutStyle | null;
  readonly volatile: boolean;
}

const DEFAULT_CACHED_NODES = 4096;

export interface StatFs {
  bsize: number;
  frsize: number;
  blocks: number;
  bfree: number;
  bavail: number;
  files: number;
  ffree: number;
  namemax: number;
}

const SEEK_DATA = 3;
const SEEK_HOLE = 4;
const WRITE_FLAGS = fsc.O_WRONLY | fsc.O_RDWR | fsc.O_TRUNC | fsc.O_APPEND | fsc.O_CREAT;
/** flags that only matter when the file is created, which open() never does */
const CREATE_ONLY_FLAGS = fsc.O_CREAT | fsc.O_EXCL | fsc.O_NOCTTY;

export type { DirEntry, StreamEntry };

export class UnionFs implements UnionContext {
  readonly stack: LayerStack;
  readonly table: NodeTable;
  readonly handles: HandleTable = new MapHandleTable();
  readonly resolver: Resolver;
  private readonly merger: DirMerger;
  private readonly dirs = new DirStreams((node) => this.readdir(node));
  private readonly listings = new Listings((node) => this.readdir(node));
  private readonly writeSide: WriteSide | null;
  private readonly lowerOpens: LowerOpens;

  private constructor(
    stack: LayerStack,
    table: NodeTable,
    resolver: Resolver,
    writeSide: WriteSide | null,
    private readonly origins: OriginInodes,
    merger: DirMerger,
  ) {
    this.stack = stack;
    this.merger = merger;
    this.table = table;
    this.resolver = resolver;
    this.writeSide = writeSide;
    this.lowerOpens = new LowerOpens(this.handles, writeSide?.index ?? null);
  }

  /**
   * Readies a stack for a mount, once per mount: checks and clears the work directory and
   * settles the whiteout style. The result is plain data, so every thread that serves the
   * mount can open its own core on it (`open`).
   */
  static async prepare(stack: LayerStack, options: UnionOptions = { whiteout: "auto" }): Promise<UnionSpec> {
    if (stack.upper === null) return { stack, whiteout: null, volatile: false };
    if (stack.work === null) throw new Error("a writable stack needs a work directory");
    const work = await WorkDir.prepare(stack.work, stack.upper, options.volatile === true);
    return { stack, whiteout: chooseWhiteoutStyle(options.whiteout, work), volatile: options.volatile === true };
  }

  /** A core on a prepared stack; each thread serving a mount opens its own. */
  static open(spec: UnionSpec, runtime: CoreRuntime = {}): UnionFs {
    const { stack } = spec;
    const top = stack.upper ?? stack.lowers[0];
    if (top === undefined) throw new Error("a layer stack needs at least one layer");
    let writeSide: WriteSide | null = null;
    const origins = new OriginRecords();
    if (stack.upper !== null) {
      if (stack.work === null || spec.whiteout === null)
        throw new Error("a writable stack needs a prepared work directory");
      const writer = new UpperWriter(WorkDir.attach(stack.work), spec.whiteout);
      const index = HardlinkIndex.open(stack.work.at, writer.xattrNamespace);
      const durable = !spec.volatile;
      writeSide = {
        writer,
        copyUp: new CopyUp(stack.upper, writer, index, origins, {
          durable,
          dataCopy: runtime.dataCopy,
          log: runtime.log,
          copiedUp: runtime.copiedUp,
        }),
        index,
        durable,
      };
    }
    const lowers: LowerBranch[] = [];
    for (const layer of stack.lowers) {
      const branch: Branch = { layer, rel: "" };
      const flags = readDirFlags(realPath(branch));
      lowers.push({ ...branch, xwhiteouts: flags.xwhiteouts });
      // The root never has a whiteout; an opaque lower root hides the layers below it.
      if (flags.opaque) break;
    }
    let upperXwhiteouts = false;
    if (stack.upper !== null) upperXwhiteouts = readDirFlags(realPath({ layer: stack.upper, rel: "" })).xwhiteouts;
    const originOf = writeSide === null ? null : (path: Buffer, layer: Layer) => origins.of(path, layer);
    const inodes = new XinoMap(
      stack.upper?.dev ?? null,
      stack.lowers.map((l) => l.dev),
    );
    const originInodes = new OriginInodes(stack.lowers);
    const listings = new LowerListings();
    const resolver = new Resolver(inodes, listings, lowers, originOf, originInodes);
    const rootStat = lstatSync(top.at, { bigint: true });
    const root = {
      type: fsc.S_IFDIR,
      // overlayfs reports the root's own number from its topmost layer
      ino: inodes.map(top.dev, rootStat.ino),
      lowers,
      hardlinkOrigin: null,
      upperXwhiteouts,
    };
    const table = new NodeTable(stack.upper, root, runtime.cachedNodes ?? DEFAULT_CACHED_NODES);
    return new UnionFs(stack, table, resolver, writeSide, originInodes, new DirMerger(listings));
  }

  /** `prepare` and `open` in one, for a core served by the thread that prepares it. */
  static async create(stack: LayerStack, options: UnionOptions = { whiteout: "auto" }): Promise<UnionFs> {
    return UnionFs.open(await UnionFs.prepare(stack, options), options);
  }

  /** Closes every open file and the layers: after the transport has stopped serving. */
  close(): void {
    for (const fh of this.handles.open()) this.release(fh);
    this.origins.close();
    this.writeSide?.index.close();
    closeStack(this.stack);
  }

  /** After a directory in the upper was renamed or removed: paths cached by fd are stale. */
  upperDirsMoved(): void {
    if (this.stack.upper !== null) forgetDeepDirs(this.stack.upper);
  }

  get readOnly(): boolean {
    return this.writeSide === null;
  }

  /** The write machinery; EROFS on a mount without an upper. */
  side(): WriteSide {
    if (this.writeSide === null) throw new FsError("EROFS", "write");
    return this.writeSide;
  }

  node(id: bigint): UnionNode {
    const node = this.table.get(id);
    if (node === undefined) throw new FsError("ESTALE", "node", String(id));
    return node;
  }

  /**
   * Where an object's data and attributes are read: its upper copy, else the hard-link index
   * entry a sibling name's copy-up made, else its topmost lower copy.
   */
  data(node: UnionNode): Branch {
    if (node.upper !== null) return node.upper;
    if (node.hardlinkOrigin !== null && this.writeSide !== null) {
      const indexed = this.writeSide.index.find(node.hardlinkOrigin);
      if (indexed !== null) return indexed;
    }
    const branch = node.lowers[0];
    if (branch === undefined) throw new FsError("ESTALE", "data", node.path);
    return branch;
  }

  /**
   * The node `name` in `parent` leads to, or null; no reference is taken (for the core's own
   * use within one request, and for transports that address objects by path).
   */
  find(parent: UnionNode, name: ByteName): UnionNode | null {
    checkName(name, "lookup");
    if (!isDirNode(parent)) throw new FsError("ENOTDIR", "lookup", parent.path);
    const known = this.table.child(parent, name);
    if (known !== undefined) return known;
    const res = this.resolver.resolveChild(parent, name);
    if (res === null) return null;
    const facts = this.resolver.factsOf(res);
    // names of one file stay one file where the upper holds them, the index joins them, or
    // nothing is ever copied up
    const shared = nlinkOf(res) > 1n && (res.upper !== null || res.hardlinkOrigin !== null || this.writeSide === null);
    const node = this.table.attach(parent, name, facts, shared, res.upper !== null);
    const lowerStat = res.lowerStats[0];
    if (res.upper === null && res.hardlinkOrigin === null && lowerStat !== undefined && node.links.length === 1) {
      node.lowerAttr ??= attrFromStat(lowerStat, node.ino, isDirNode(node) && res.lowers.length > 1);
    }
    return node;
  }

  /** The protocol's LOOKUP: `find`, and the kernel holds a reference until it forgets it. */
  lookup(parent: UnionNode, name: ByteName): UnionNode | null {
    const node = this.find(parent, name);
    if (node !== null) this.table.ref(node);
    return node;
  }

  /**
   * The kernel was handed `node` in an entry (CREATE, MKNOD, MKDIR, SYMLINK, LINK replies) and
   * holds a reference to it, as after a lookup.
   */
  ref(node: UnionNode): void {
    this.table.ref(node);
  }

  /** FORGET: the kernel drops `count` references; a node no one holds may then go. */
  forget(id: bigint, count: number): void {
    this.table.forget(id, count);
  }

  /**
   * The object's attributes. Through an open file (`fh`) they are the object's as long as it
   * has a name, as overlayfs's fstat is its getattr; the open file's own once it has none
   * (unlinked while open).
   */
  getattr(node: UnionNode, fh?: number): Attr {
    if (node.links.length === 0) {
      // the kernel's fstat asks by inode alone: any open file of it will do
      const through = fh ?? this.handleOf(node);
      if (through !== undefined)
        return attrFromStat(fstatSync(this.fd(through, "fstat"), { bigint: true }), node.ino, false);
    }
    if (node.lowerAttr !== null && node.upper === null && node.hardlinkOrigin === null) return { ...node.lowerAttr };
    const branch = this.data(node);
    const path = realPath(branch);
    const st = lstatSync(path, { bigint: true });
    const merged = isDirNode(node) && node.lowers.length > 0 && (node.upper !== null || node.lowers.length > 1);
    const attr = attrFromStat(st, node.ino, merged);
    // an indexed inode has at least two links (index entry and a name) unless reached through the index
    const indexed = attr.nlink > 1 || branch.layer === this.writeSide?.index.layer;
    if (!isDirNode(node) && branch.layer.writable && indexed) attr.nlink = HardlinkIndex.unionNlink(path, attr.nlink);
    return attr;
  }

  readdir(node: UnionNode): DirEntry[] {
    if (!isDirNode(node)) throw new FsError("ENOTDIR", "readdir", node.path);
    const branches =
      node.upper === null ? node.lowers : [{ ...node.upper, xwhiteouts: node.upperXwhiteouts }, ...node.lowers];
    const names = this.merger.mergedNames(branches);
    const parent = node.parent ?? node;
    const entries: DirEntry[] = [
      { name: ".", ino: node.ino, mode: fsc.S_IFDIR },
      { name: "..", ino: parent.ino, mode: fsc.S_IFDIR },
    ];
    for (const name of names) {
      const child = this.find(node, name);
      if (child !== null) entries.push({ name, ino: child.ino, mode: child.type });
    }
    return entries;
  }

  /** opendir: a stream over a snapshot of the merged listing (see DirStreams). */
  opendir(node: UnionNode): number {
    if (!isDirNode(node)) throw new FsError("ENOTDIR", "opendir", node.path);
    const dh = this.dirs.opendir(node);
    this.table.pin(node);
    return dh;
  }

  /** readdir of an open directory from `offset` (0 starts over with a fresh snapshot). */
  readdirAt(dh: number, offset: number, max?: number): StreamEntry[] {
    return this.dirs.readdir(dh, offset, max);
  }

  /**
   * The merged listing of a directory after cookie `after` (0: from the start), at most `max`
   * entries: read by offset alone, with no open directory (see listings.ts).
   */
  readdirAfter(node: UnionNode, after: number, max: number): StreamEntry[] {
    if (!isDirNode(node)) throw new FsError("ENOTDIR", "readdir", node.path);
    return this.listings.from(node, after, max);
  }

  releasedir(dh: number): void {
    const node = this.dirs.releasedir(dh);
    if (node !== undefined) this.table.unpin(node);
  }

  /** The symlink's target, as a byte string. */
  readlink(node: UnionNode): ByteName {
    return readlinkSync(realPath(this.data(node)), { encoding: "latin1" });
  }

  /** True when the merged view of a directory holds nothing but `.` and `..`. */
  isEmptyDir(node: UnionNode): boolean {
    return this.readdir(node).length <= 2;
  }

  /** Opens an existing object; opening for writing copies it up first (no data with O_TRUNC). */
  open(node: UnionNode, flags: number): number {
    if (isDirNode(node) && (flags & WRITE_FLAGS) !== 0) throw new FsError("EISDIR", "open", node.path);
    let branch = this.data(node);
    if ((flags & WRITE_FLAGS) !== 0) {
      branch = this.side().copyUp.ensureUpper(node, (flags & fsc.O_TRUNC) === 0);
    }
    const fd = openSync(realPath(branch), (flags & ~CREATE_ONLY_FLAGS) | fsc.O_NOFOLLOW);
    return this.addHandle({ node, fd, flags, inUpper: branch.layer.writable });
  }

  /**
   * The raw fd behind a handle, for a transport that reads and writes it itself, and for every
   * operation on an open file here. A file opened from below is served by its upper copy from
   * the first use after the copy-up (lower-opens.ts).
   */
  fd(fh: number, syscall = "read"): number {
    return this.openFile(fh, syscall).fd;
  }

  /**
   * The fd of an open file whose data is the object's upper copy, else null (a file opened from
   * below, which a copy-up may still move). An upper copy stays the object's data for as long
   * as the file is open: what FUSE passthrough may hand the kernel.
   */
  upperFd(fh: number): number | null {
    const open = this.openFile(fh, "open");
    return open.inUpper ? open.fd : null;
  }

  private openFile(fh: number, syscall: string): OpenFile {
    const open = this.handles.get(fh);
    if (open === undefined) throw new FsError("EBADF", syscall);
    if (!open.inUpper) this.lowerOpens.follow(fh, open);
    return open;
  }

  /** An open file of `node`, if any (a scan: only for nodes with no name left). */
  private handleOf(node: UnionNode): number | undefined {
    return this.handles.open().find((fh) => this.handles.get(fh)?.node === node);
  }

  /** Before `parent`/`name` goes: files open from below follow a copy-up of its node made since. */
  private beforeNameGoes(parent: UnionNode, name: ByteName): void {
    if (this.lowerOpens.size === 0) return;
    const node = this.table.known(parent, name);
    if (node !== undefined) this.lowerOpens.nameGoes(node);
  }

  /**
   * Copies the data a copy-up of `node` needs off the calling thread (DataCopyMode "staged");
   * the caller runs the returned release once its request is done.
   */
  stageCopyUp(node: UnionNode): Promise<() => void> {
    return this.side().copyUp.stage(node);
  }

  /** Whether fsync reaches the disk: not on a volatile mount, as in overlayfs. */
  get syncs(): boolean {
    return this.writeSide?.durable !== false;
  }

  write(fh: number, buf: Buffer, length: number, position: number): number {
    return writeSync(this.fd(fh, "write"), buf, 0, length, position);
  }

  /** The node an open file belongs to (its name may be gone). */
  nodeOf(fh: number): UnionNode {
    const handle = this.handles.get(fh);
    if (handle === undefined) throw new FsError("EBADF", "fstat");
    return handle.node;
  }

  fsync(fh: number, dataOnly: boolean): void {
    const fd = this.fd(fh, "fsync");
    if (!this.syncs) return;
    if (dataOnly) fdatasyncSync(fd);
    else fsyncSync(fd);
  }

  /** lseek for SEEK_DATA / SEEK_HOLE, the whences FUSE passes on (the kernel does the rest). */
  lseek(fh: number, offset: number, whence: number): number {
    const fd = this.fd(fh, "lseek");
    if (whence !== SEEK_DATA && whence !== SEEK_HOLE) throw new FsError("EINVAL", "lseek");
    const found = whence === SEEK_DATA ? seekData(fd, offset) : seekHole(fd, offset);
    if (found < 0) throw new FsError("ENXIO", "lseek");
    return found;
  }

  fallocate(fh: number, mode: number, offset: number, length: number): void {
    fallocate(this.fd(fh, "fallocate"), mode, offset, length);
  }

  /** copy_file_range between two open files of the mount; EXDEV lets the kernel copy itself. */
  copyFileRange(fhIn: number, offIn: number, fhOut: number, offOut: number, length: number, flags: number): number {
    if (flags !== 0) throw new FsError("EINVAL", "copy_file_range");
    return copyFileRange(this.fd(fhIn, "copy_file_range"), offIn, this.fd(fhOut, "copy_file_range"), offOut, length);
  }

  read(fh: number, buf: Buffer, length: number, position: number): number {
    return readSync(this.fd(fh, "read"), buf, 0, length, position);
  }

  release(fh: number): void {
    const handle = this.handles.remove(fh);
    if (handle === undefined) return;
    this.lowerOpens.released(fh, handle);
    closeSync(handle.fd);
    this.table.unpin(handle.node);
  }

  /** An open file holds its node: it keeps serving after its last name is gone. */
  private addHandle(open: OpenFile): number {
    this.table.pin(open.node);
    const fh = this.handles.add(open);
    this.lowerOpens.added(fh, open);
    return fh;
  }

  /**
   * An attribute's value, null when it has none: the kernel asks for security.capability
   * before every write, so the miss is the common answer and is a value, not an exception.
   */
  getxattr(node: UnionNode, name: string): Buffer | null {
    if (isPrivateXattr(name)) return null;
    return lgetxattr(realPath(this.data(node)), name);
  }

  listxattr(node: UnionNode): string[] {
    const names = llistxattr(realPath(this.data(node)));
    return names.filter((n) => !isPrivateXattr(n));
  }

  // Operations that change the tree; each lives in its own module, named after its syscall.

  /**
   * create(2): a new file, open for reading and writing. Of `flags`, O_APPEND applies to the
   * open file; O_EXCL is implied (the kernel sends create only for a name it found missing).
   */
  create(
    parent: UnionNode,
    name: ByteName,
    mode: number,
    flags: number,
    caller: Caller,
  ): { node: UnionNode; fh: number } {
    this.listings.changed();
    const { node, fd } = createFile(this, parent, name, mode, flags & fsc.O_APPEND, caller);
    return { node, fh: this.addHandle({ node, fd, flags: fsc.O_RDWR | (flags & fsc.O_APPEND), inUpper: true }) };
  }

  mknod(parent: UnionNode, name: ByteName, mode: number, rdev: number, caller: Caller): UnionNode {
    this.listings.changed();
    return makeNod(this, parent, name, mode, rdev, caller);
  }

  mkdir(parent: UnionNode, name: ByteName, mode: number, caller: Caller): UnionNode {
    this.listings.changed();
    return makeDir(this, parent, name, mode, caller);
  }

  symlink(parent: UnionNode, name: ByteName, target: ByteName, caller: Caller): UnionNode {
    this.listings.changed();
    return makeSymlink(this, parent, name, target, caller);
  }

  link(source: UnionNode, parent: UnionNode, name: ByteName, caller: Caller): UnionNode {
    this.listings.changed();
    return makeLink(this, source, parent, name, caller);
  }

  unlink(parent: UnionNode, name: ByteName): void {
    this.listings.changed();
    this.beforeNameGoes(parent, name);
    unlinkEntry(this, parent, name);
  }

  rmdir(parent: UnionNode, name: ByteName): void {
    this.listings.changed();
    removeDir(this, parent, name);
  }

  /** renameat2: `flags` RENAME_NOREPLACE or RENAME_EXCHANGE (RENAME_WHITEOUT: EINVAL, as overlayfs) */
  rename(oldParent: UnionNode, oldName: ByteName, newParent: UnionNode, newName: ByteName, flags = 0): void {
    if ((flags & RENAME_EXCHANGE) === 0) this.beforeNameGoes(newParent, newName);
    this.listings.changed();
    renameEntry(this, oldParent, oldName, newParent, newName, flags);
  }

  /** setattr: the changes present in `changes`; `fh` when the request came through an open file. */
  setattr(node: UnionNode, changes: AttrChanges, fh?: number): Attr {
    setattrNode(this, node, changes, fh === undefined ? undefined : this.openFile(fh, "setattr"));
    return this.getattr(node, fh);
  }

  /**
   * After a write or an open with O_TRUNC by a caller without CAP_FSETID, through `fh`: the
   * set-id bits and file capability go (setattr-ops.ts, killPrivileges); true if any did.
   */
  killPrivileges(fh: number): boolean {
    const open = this.openFile(fh, "write");
    return killPrivileges(this, open.node, open);
  }

  setxattr(node: UnionNode, name: string, value: Buffer, flags: number): void {
    setxattrNode(this, node, name, value, flags);
  }

  removexattr(node: UnionNode, name: string): void {
    removexattrNode(this, node, name);
  }

  statfs(): StatFs {
    const top = this.stack.upper ?? this.stack.lowers[0];
    if (top === undefined) throw new FsError("EIO", "statfs");
    const st = statfsSync(top.at);
    return {
      bsize: st.bsize,
      frsize: st.bsize,
      blocks: st.blocks,
      bfree: st.bfree,
      bavail: st.bavail,
      files: st.files,
      ffree: st.ffree,
      namemax: NAME_MAX,
    };
  }

  access(node: UnionNode, mask: number): void {
    if ((mask & fsc.W_OK) !== 0 && this.readOnly) throw new FsError("EROFS", "access", node.path);
    lstatSync(realPath(this.data(node)));
  }
}
