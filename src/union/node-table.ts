/**
 * The table of known union objects ("nodes"), addressed by id as the kernel's FUSE protocol
 * addresses them, and by (parent, name) for lookups.
 *
 * A node records where its object lives: the upper branch (if any) and, for directories, the
 * lower merge set (top-down, cut at an opaque directory); for a non-directory living only below,
 * the one lower branch that holds it. Lower facts never change; the upper branch is updated by
 * the write operations that change it. This is the mutable state behind a small interface, so a
 * shared implementation can replace the Map later.
 */
import { constants as fsc } from "node:fs";
import type { Branch } from "./layer.js";

export interface LowerBranch extends Branch {
  /** the directory may hold xattr whiteouts (only meaningful for directories) */
  readonly xwhiteouts: boolean;
}

export interface UnionNode {
  readonly id: bigint;
  readonly parent: UnionNode | null;
  readonly name: string;
  /** mount-relative path, "" for the root */
  readonly path: string;
  /**
   * the object's file type (S_IFMT bits), kept so a listing need not stat every entry: a name
   * changes type only through the mount (delete, create, rename), which replaces the node.
   * The one record of whether the node is a directory: see isDirNode.
   */
  readonly type: number;
  upper: Branch | null;
  upperXwhiteouts: boolean;
  /** dirs: the lower merge set; non-dirs: [the lower object] when it lives only below, else [] */
  lowers: readonly LowerBranch[];
  /**
   * a lower-only file with several names: its origin record, under which the hard-link index
   * may hold the copied-up inode that all its names share (checked on each access, because
   * copying up any one name changes what the others show)
   */
  readonly hardlinkOrigin: Buffer | null;
  /** st_ino reported for this object, fixed when the node is created */
  readonly ino: bigint;
}

/** Whether a node is a directory, read from its file type. */
export function isDirNode(node: UnionNode): boolean {
  return node.type === fsc.S_IFDIR;
}

export interface NodeTable {
  readonly root: UnionNode;
  get(id: bigint): UnionNode | undefined;
  child(parent: UnionNode, name: string): UnionNode | undefined;
  add(node: UnionNode): void;
  /** Forgets a node and everything below it (after delete, rename, or a changed upper). */
  remove(node: UnionNode): void;
  nextId(): bigint;
  readonly size: number;
}

export const ROOT_ID = 1n;

export class MapNodeTable implements NodeTable {
  readonly root: UnionNode;
  private readonly byId = new Map<bigint, UnionNode>();
  private readonly children = new Map<bigint, Map<string, UnionNode>>();
  private lastId = ROOT_ID;

  constructor(root: UnionNode) {
    this.root = root;
    this.byId.set(root.id, root);
  }

  get size(): number {
    return this.byId.size;
  }

  nextId(): bigint {
    this.lastId += 1n;
    return this.lastId;
  }

  get(id: bigint): UnionNode | undefined {
    return this.byId.get(id);
  }

  child(parent: UnionNode, name: string): UnionNode | undefined {
    return this.children.get(parent.id)?.get(name);
  }

  add(node: UnionNode): void {
    if (node.parent === null) throw new Error("only the root has no parent");
    let siblings = this.children.get(node.parent.id);
    if (siblings === undefined) {
      siblings = new Map();
      this.children.set(node.parent.id, siblings);
    }
    const old = siblings.get(node.name);
    if (old !== undefined && old !== node) this.remove(old);
    siblings.set(node.name, node);
    this.byId.set(node.id, node);
  }

  remove(node: UnionNode): void {
    if (node.parent !== null) {
      const siblings = this.children.get(node.parent.id);
      if (siblings?.get(node.name) === node) siblings.delete(node.name);
    }
    const stack = [node];
    for (let n = stack.pop(); n !== undefined; n = stack.pop()) {
      this.byId.delete(n.id);
      const kids = this.children.get(n.id);
      if (kids !== undefined) {
        stack.push(...kids.values());
        this.children.delete(n.id);
      }
    }
  }
}
