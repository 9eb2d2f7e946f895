/**
 * The merged view, driven by node-based operations as the kernel's FUSE protocol is: every
 * operation takes a node (or a parent node and a name). Transports (src/fuse) translate their
 * requests into these calls; nothing here knows about FUSE.
 *
 * Expected misses are values (`lookup` returns null); every other failure is thrown as an
 * errno-shaped error for the transport to turn into a reply.
 */
import { constants as fsc, lstatSync } from "node:fs";
import { type FileHandle, lstat, open, readlink, statfs } from "node:fs/promises";
import { FsError, type Logger } from "../errors.js";
import { isPrivateXattr } from "../format/overlay-xattr.js";
import { checkName } from "../path/name.js";
import { lgetxattr, llistxattr } from "../sys/xattr.js";
import { type Attr, attrFromStat } from "./attr.js";
import type { Caller } from "./caller.js";
import { CopyUp } from "./copy-up.js";
import { createFile, makeDir, makeLink, makeNod, makeSymlink } from "./create-ops.js";
import { type HandleTable, MapHandleTable } from "./handles.js";
import { HardlinkIndex } from "./hardlink-index.js";
import { XinoMap } from "./inode-map.js";
import { type Branch, type Layer, type LayerStack, realPath } from "./layer.js";
import { Resolver } from "./lookup.js";
import { isDirNode, type LowerBranch, MapNodeTable, type NodeTable, ROOT_ID, type UnionNode } from "./node-table.js";
import { OriginInodes } from "./origin-inodes.js";
import { OriginRecords } from "./origin-record.js";
import { probeDir } from "./probe.js";
import { DirMerger } from "./readdir.js";
import { removeDir, unlinkEntry } from "./remove-ops.js";
import { renameEntry } from "./rename-op.js";
import {
  chmodNode,
  chownNode,
  removexattrNode,
  setxattrNode,
  type TimeSpec,
  truncateNode,
  utimensNode,
} from "./setattr-ops.js";
import { chooseWhiteoutStyle, UpperWriter, type WhiteoutChoice } from "./upper-writer.js";
import { WorkDir } from "./work-dir.js";

/** What writes need: present only when the stack has an upper. */
export interface WriteSide {
  readonly writer: UpperWriter;
  readonly copyUp: CopyUp;
  readonly index: HardlinkIndex;
  /** false on a volatile mount: nothing is synced */
  readonly durable: boolean;
}

export interface UnionOptions {
  /** how whiteouts and opaque marks are written: "auto" picks chardev when mknod works */
  whiteout: WhiteoutChoice;
  /**
   * overlayfs's `volatile`: copy-up and fsync do not sync, trading crash safety for speed
   * (fuse-overlayfs never syncs a copy-up); the work dir is marked so it is not reused
   */
  volatile?: boolean;
  /** where the core reports what it skipped (never a request's failure: those are errnos) */
  log?: Logger;
}

export interface DirEntry {
  name: string;
  ino: bigint;
  mode: number;
}

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

const WRITE_FLAGS = fsc.O_WRONLY | fsc.O_RDWR | fsc.O_TRUNC | fsc.O_APPEND | fsc.O_CREAT;
/** flags that only matter when the file is created, which open() never does */
const CREATE_ONLY_FLAGS = fsc.O_CREAT | fsc.O_EXCL | fsc.O_NOCTTY;

export class UnionFs {
  readonly stack: LayerStack;
  readonly table: NodeTable;
  readonly handles: HandleTable = new MapHandleTable();
  readonly resolver: Resolver;
  private readonly merger = new DirMerger();
  private readonly writeSide: WriteSide | null;

  private constructor(stack: LayerStack, table: NodeTable, resolver: Resolver, writeSide: WriteSide | null) {
    this.stack = stack;
    this.table = table;
    this.resolver = resolver;
    this.writeSide = writeSide;
  }

  static async create(stack: LayerStack, options: UnionOptions = { whiteout: "auto" }): Promise<UnionFs> {
    const top = stack.upper ?? stack.lowers[0];
    if (top === undefined) throw new Error("a layer stack needs at least one layer");
    let writeSide: WriteSide | null = null;
    const origins = new OriginRecords();
    if (stack.upper !== null) {
      if (stack.work === null) throw new Error("a writable stack needs a work directory");
      const work = await WorkDir.prepare(stack.work, stack.upper, options.volatile === true);
      const writer = new UpperWriter(work, chooseWhiteoutStyle(options.whiteout, work));
      const index = await HardlinkIndex.open(stack.work, writer.xattrNamespace);
      const durable = options.volatile !== true;
      writeSide = { writer, copyUp: new CopyUp(writer, index, origins, durable, options.log), index, durable };
    }
    const lowers: LowerBranch[] = [];
    for (const layer of stack.lowers) {
      const branch: Branch = { layer, rel: "" };
      const probe = probeDir(layer.root, await lstat(layer.root, { bigint: true }));
      lowers.push({ ...branch, xwhiteouts: probe.xwhiteouts });
      // The root never has a whiteout; an opaque lower root hides the layers below it.
      if (probe.opaque) break;
    }
    let upperXwhiteouts = false;
    if (stack.upper !== null) {
      upperXwhiteouts = probeDir(stack.upper.root, await lstat(stack.upper.root, { bigint: true })).xwhiteouts;
    }
    const originOf = writeSide === null ? null : (path: string, layer: Layer) => origins.of(path, layer);
    const inodes = new XinoMap(
      stack.upper?.dev ?? null,
      stack.lowers.map((l) => l.dev),
    );
    const resolver = new Resolver(inodes, lowers, originOf, new OriginInodes(stack.lowers));
    const rootStat = await lstat(top.root, { bigint: true });
    const root: UnionNode = {
      id: ROOT_ID,
      parent: null,
      name: "",
      path: "",
      type: fsc.S_IFDIR,
      upper: stack.upper === null ? null : { layer: stack.upper, rel: "" },
      upperXwhiteouts,
      lowers,
      hardlinkOrigin: null,
      // overlayfs reports the root's own number from its topmost layer
      ino: inodes.map(top.dev, rootStat.ino),
    };
    return new UnionFs(stack, new MapNodeTable(root), resolver, writeSide);
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

  async lookup(parent: UnionNode, name: string): Promise<UnionNode | null> {
    checkName(name, "lookup");
    if (!isDirNode(parent)) throw new FsError("ENOTDIR", "lookup", parent.path);
    const known = this.table.child(parent, name);
    if (known !== undefined) return known;
    const res = this.resolver.resolveChild(parent, name);
    if (res === null) return null;
    return this.resolver.makeNode(this.table, parent, name, res);
  }

  async getattr(node: UnionNode): Promise<Attr> {
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

  async readdir(node: UnionNode): Promise<DirEntry[]> {
    if (!isDirNode(node)) throw new FsError("ENOTDIR", "readdir", node.path);
    const branches =
      node.upper === null ? node.lowers : [{ ...node.upper, xwhiteouts: node.upperXwhiteouts }, ...node.lowers];
    const names = await this.merger.mergedNames(branches);
    const parent = node.parent ?? node;
    const entries: DirEntry[] = [
      { name: ".", ino: node.ino, mode: fsc.S_IFDIR },
      { name: "..", ino: parent.ino, mode: fsc.S_IFDIR },
    ];
    const children = await Promise.all(names.map((name) => this.lookup(node, name)));
    for (const child of children) {
      if (child !== null) entries.push({ name: child.name, ino: child.ino, mode: child.type });
    }
    return entries;
  }

  async readlink(node: UnionNode): Promise<string> {
    return readlink(realPath(this.data(node)));
  }

  /** True when the merged view of a directory holds nothing but `.` and `..`. */
  async isEmptyDir(node: UnionNode): Promise<boolean> {
    return (await this.readdir(node)).length <= 2;
  }

  /** Opens an existing object; opening for writing copies it up first (no data with O_TRUNC). */
  async open(node: UnionNode, flags: number): Promise<number> {
    if (isDirNode(node) && (flags & WRITE_FLAGS) !== 0) throw new FsError("EISDIR", "open", node.path);
    let branch = this.data(node);
    if ((flags & WRITE_FLAGS) !== 0) {
      branch = await this.side().copyUp.ensureUpper(node, (flags & fsc.O_TRUNC) === 0);
    }
    const file = await open(realPath(branch), (flags & ~CREATE_ONLY_FLAGS) | fsc.O_NOFOLLOW);
    return this.handles.add({ node, file, flags });
  }

  /** Adds an already open file (from create) to the handle table. */
  adopt(node: UnionNode, file: FileHandle, flags: number): number {
    return this.handles.add({ node, file, flags });
  }

  private handle(fh: number, syscall: string): FileHandle {
    const handle = this.handles.get(fh);
    if (handle === undefined) throw new FsError("EBADF", syscall);
    return handle.file;
  }

  async write(fh: number, buf: Buffer, length: number, position: number): Promise<number> {
    const { bytesWritten } = await this.handle(fh, "write").write(buf, 0, length, position);
    return bytesWritten;
  }

  async ftruncate(fh: number, size: number): Promise<void> {
    await this.handle(fh, "ftruncate").truncate(size);
  }

  async fsync(fh: number, dataOnly: boolean): Promise<void> {
    const file = this.handle(fh, "fsync");
    if (this.writeSide?.durable === false) return; // volatile: fsync is a no-op, as in overlayfs
    await (dataOnly ? file.datasync() : file.sync());
  }

  async read(fh: number, buf: Buffer, length: number, position: number): Promise<number> {
    const { bytesRead } = await this.handle(fh, "read").read(buf, 0, length, position);
    return bytesRead;
  }

  async release(fh: number): Promise<void> {
    const handle = this.handles.remove(fh);
    if (handle !== undefined) await handle.file.close();
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

  async create(
    parent: UnionNode,
    name: string,
    mode: number,
    caller: Caller,
  ): Promise<{ node: UnionNode; fh: number }> {
    const { node, file } = await createFile(this, parent, name, mode, caller);
    return { node, fh: this.adopt(node, file, fsc.O_RDWR) };
  }

  mknod(parent: UnionNode, name: string, mode: number, rdev: number, caller: Caller): Promise<UnionNode> {
    return makeNod(this, parent, name, mode, rdev, caller);
  }

  mkdir(parent: UnionNode, name: string, mode: number, caller: Caller): Promise<UnionNode> {
    return makeDir(this, parent, name, mode, caller);
  }

  symlink(parent: UnionNode, name: string, target: string, caller: Caller): Promise<UnionNode> {
    return makeSymlink(this, parent, name, target, caller);
  }

  link(source: UnionNode, parent: UnionNode, name: string, caller: Caller): Promise<UnionNode> {
    return makeLink(this, source, parent, name, caller);
  }

  unlink(parent: UnionNode, name: string): Promise<void> {
    return unlinkEntry(this, parent, name);
  }

  rmdir(parent: UnionNode, name: string): Promise<void> {
    return removeDir(this, parent, name);
  }

  rename(oldParent: UnionNode, oldName: string, newParent: UnionNode, newName: string): Promise<void> {
    return renameEntry(this, oldParent, oldName, newParent, newName);
  }

  chmod(node: UnionNode, mode: number): Promise<void> {
    return chmodNode(this, node, mode);
  }

  chown(node: UnionNode, uid: number, gid: number): Promise<void> {
    return chownNode(this, node, uid, gid);
  }

  utimens(node: UnionNode, atime: TimeSpec, mtime: TimeSpec): Promise<void> {
    return utimensNode(this, node, atime, mtime);
  }

  truncate(node: UnionNode, size: number): Promise<void> {
    return truncateNode(this, node, size);
  }

  setxattr(node: UnionNode, name: string, value: Buffer, flags: number): Promise<void> {
    return setxattrNode(this, node, name, value, flags);
  }

  removexattr(node: UnionNode, name: string): Promise<void> {
    return removexattrNode(this, node, name);
  }

  async statfs(): Promise<StatFs> {
    const top = this.stack.upper ?? this.stack.lowers[0];
    if (top === undefined) throw new FsError("EIO", "statfs");
    const st = await statfs(top.root);
    return {
      bsize: st.bsize,
      frsize: st.bsize,
      blocks: st.blocks,
      bfree: st.bfree,
      bavail: st.bavail,
      files: st.files,
      ffree: st.ffree,
      namemax: 255,
    };
  }

  async access(node: UnionNode, mask: number): Promise<void> {
    if ((mask & fsc.W_OK) !== 0 && this.readOnly) throw new FsError("EROFS", "access", node.path);
    lstatSync(realPath(this.data(node)));
  }
}
