/**
 * The merged view, driven by node-based operations as the kernel's FUSE protocol is: every
 * operation takes a node (or a parent node and a name). Transports (src/fuse) translate their
 * requests into these calls; nothing here knows about FUSE.
 *
 * Expected misses are values (`lookup` returns null); every other failure is thrown as an
 * errno-shaped error for the transport to turn into a reply.
 */
import { constants as fsc } from "node:fs";
import { lstat, open, readlink, statfs } from "node:fs/promises";
import { FsError } from "../errors.js";
import { isPrivateXattr } from "../format/overlay-xattr.js";
import { checkName } from "../path/name.js";
import { lgetxattrAsync, llistxattrAsync } from "../sys/xattr.js";
import { type Attr, attrFromStat } from "./attr.js";
import type { Caller } from "./caller.js";
import { type HandleTable, MapHandleTable } from "./handles.js";
import { SameFsInodeMap } from "./inode-map.js";
import { type Branch, type LayerStack, realPath } from "./layer.js";
import { Resolver } from "./lookup.js";
import { type LowerBranch, MapNodeTable, type NodeTable, ROOT_ID, type UnionNode } from "./node-table.js";
import { probeDir } from "./probe.js";
import { DirMerger } from "./readdir.js";

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

export class UnionFs {
  readonly stack: LayerStack;
  readonly table: NodeTable;
  readonly handles: HandleTable = new MapHandleTable();
  readonly resolver: Resolver;
  private readonly merger = new DirMerger();

  private constructor(stack: LayerStack, table: NodeTable, resolver: Resolver) {
    this.stack = stack;
    this.table = table;
    this.resolver = resolver;
  }

  static async create(stack: LayerStack): Promise<UnionFs> {
    const top = stack.upper ?? stack.lowers[0];
    if (top === undefined) throw new Error("a layer stack needs at least one layer");
    const resolver = new Resolver(new SameFsInodeMap(top.dev));
    const lowers: LowerBranch[] = [];
    for (const layer of stack.lowers) {
      const branch: Branch = { layer, rel: "" };
      const probe = await probeDir(layer.root, await lstat(layer.root, { bigint: true }));
      lowers.push({ ...branch, xwhiteouts: probe.xwhiteouts });
      // The root never has a whiteout; an opaque lower root hides the layers below it.
      if (probe.opaque) break;
    }
    let upperXwhiteouts = false;
    if (stack.upper !== null) {
      upperXwhiteouts = (await probeDir(stack.upper.root, await lstat(stack.upper.root, { bigint: true }))).xwhiteouts;
    }
    const rootStat = await lstat(top.root, { bigint: true });
    const root: UnionNode = {
      id: ROOT_ID,
      parent: null,
      name: "",
      path: "",
      isDir: true,
      upper: stack.upper === null ? null : { layer: stack.upper, rel: "" },
      upperXwhiteouts,
      lowers,
      // overlayfs reports the root's own number from its topmost layer
      ino: rootStat.ino,
    };
    return new UnionFs(stack, new MapNodeTable(root), resolver);
  }

  get readOnly(): boolean {
    return this.stack.upper === null;
  }

  node(id: bigint): UnionNode {
    const node = this.table.get(id);
    if (node === undefined) throw new FsError("ESTALE", "node", String(id));
    return node;
  }

  /** The topmost copy of an object: where its data and attributes are read. */
  top(node: UnionNode): Branch {
    const branch = node.upper ?? node.lowers[0];
    if (branch === undefined) throw new FsError("ESTALE", "top", node.path);
    return branch;
  }

  async lookup(parent: UnionNode, name: string): Promise<UnionNode | null> {
    checkName(name, "lookup");
    if (!parent.isDir) throw new FsError("ENOTDIR", "lookup", parent.path);
    const known = this.table.child(parent, name);
    if (known !== undefined) return known;
    const res = await this.resolver.resolveChild(parent, name);
    if (res === null) return null;
    return this.resolver.makeNode(this.table, parent, name, res);
  }

  async getattr(node: UnionNode): Promise<Attr> {
    const st = await lstat(realPath(this.top(node)), { bigint: true });
    const merged = node.isDir && node.lowers.length > 0 && (node.upper !== null || node.lowers.length > 1);
    return attrFromStat(st, node.ino, merged);
  }

  async readdir(node: UnionNode): Promise<DirEntry[]> {
    if (!node.isDir) throw new FsError("ENOTDIR", "readdir", node.path);
    const branches = node.upper === null ? node.lowers : [{ ...node.upper, xwhiteouts: node.upperXwhiteouts }, ...node.lowers];
    const names = await this.merger.mergedNames(branches);
    const parent = node.parent ?? node;
    const entries: DirEntry[] = [
      { name: ".", ino: node.ino, mode: fsc.S_IFDIR },
      { name: "..", ino: parent.ino, mode: fsc.S_IFDIR },
    ];
    const children = await Promise.all(names.map((name) => this.lookup(node, name)));
    for (const child of children) {
      if (child === null) continue;
      const mode = child.isDir ? fsc.S_IFDIR : await this.typeOf(child);
      entries.push({ name: child.name, ino: child.ino, mode });
    }
    return entries;
  }

  private async typeOf(node: UnionNode): Promise<number> {
    const st = await lstat(realPath(this.top(node)), { bigint: true });
    return Number(st.mode) & fsc.S_IFMT;
  }

  async readlink(node: UnionNode): Promise<string> {
    return readlink(realPath(this.top(node)));
  }

  async open(node: UnionNode, flags: number, _caller?: Caller): Promise<number> {
    if ((flags & WRITE_FLAGS) !== 0) throw new FsError("EROFS", "open", node.path);
    const file = await open(realPath(this.top(node)), fsc.O_RDONLY | fsc.O_NOFOLLOW);
    return this.handles.add({ node, file, flags });
  }

  async read(fh: number, buf: Buffer, length: number, position: number): Promise<number> {
    const handle = this.handles.get(fh);
    if (handle === undefined) throw new FsError("EBADF", "read");
    const { bytesRead } = await handle.file.read(buf, 0, length, position);
    return bytesRead;
  }

  async release(fh: number): Promise<void> {
    const handle = this.handles.remove(fh);
    if (handle !== undefined) await handle.file.close();
  }

  async getxattr(node: UnionNode, name: string): Promise<Buffer> {
    if (isPrivateXattr(name)) throw new FsError("ENODATA", "getxattr", node.path);
    const value = await lgetxattrAsync(realPath(this.top(node)), name);
    if (value === null) throw new FsError("ENODATA", "getxattr", node.path);
    return value;
  }

  async listxattr(node: UnionNode): Promise<string[]> {
    const names = await llistxattrAsync(realPath(this.top(node)));
    return names.filter((n) => !isPrivateXattr(n));
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
    await lstat(realPath(this.top(node)));
  }
}
