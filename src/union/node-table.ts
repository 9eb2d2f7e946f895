/**
 * The union's inodes ("nodes") and their names, in the shape the kernel's FUSE protocol gives
 * them: a node is addressed by id; a name is (parent node, name bytes) and leads to a node.
 * rename moves a name, unlink drops one, a hard link is one node with several names, and a
 * node whose last name is gone lives on while it is open.
 *
 * A node lives while the kernel holds references to it (lookup counts, given back by forget),
 * while a file or directory of it is open, or while names below it are known. A node with none
 * of those is kept only as a cache, the oldest dropped first once there are too many; whatever
 * is dropped is found again from the layers, with the same st_ino. So memory follows what the
 * kernel holds, not how many objects were ever looked up.
 *
 * A node keeps facts about the lowers, which never change while mounted (its lower merge set
 * or lower object, st_ino, type); of the upper it keeps per name only whether the upper holds
 * that name, which the operation that changes the upper updates as it does so.
 *
 * Names, and the paths made of them, are byte strings (ByteName, see layer.ts).
 */
import { constants as fsc } from "node:fs";
import type { Attr } from "./attr.js";
import type { Branch, ByteName, Layer } from "./layer.js";

export interface LowerBranch extends Branch {
  /** the directory may hold xattr whiteouts (only meaningful for directories) */
  readonly xwhiteouts: boolean;
}

/** One name of a node. */
export interface Link {
  /** null only for the root's own entry */
  readonly parent: UnionNode | null;
  readonly name: ByteName;
  /** the upper holds this name: a copy of the object, or the object itself */
  inUpper: boolean;
}

/** What the nodes of one table share: the upper layer, and when names last moved. */
interface Names {
  readonly upper: Layer | null;
  /** bumped whenever a name moves or goes, so cached paths are recomputed */
  generation: number;
}

export class UnionNode {
  /** the names the merged view shows it under; paths are made of the first. Empty: unlinked. */
  links: Link[] = [];
  /** references the kernel holds (lookups not yet forgotten) */
  nlookup = 0;
  /** open files and directories of it */
  opens = 0;
  /** names in the table whose parent it is */
  kids = 0;
  /** used since the cache last looked at it (the cache's second chance, see NodeTable.evict) */
  used = false;
  /** still in its table (false once dropped) */
  live = true;
  /**
   * The attributes of its topmost lower copy, read when it was found, for an object whose data
   * is that copy (no upper copy, not a lower hard link another name's copy-up may move): lowers
   * never change while mounted, so a getattr answers from here until the object is copied up.
   */
  lowerAttr: Attr | null = null;
  private cachedPath = "";
  private pathGeneration = -1;
  private upperBranch: Branch | null = null;
  private upperLink: Link | null = null;
  private upperGeneration = -1;

  constructor(
    readonly id: bigint,
    /** the object's file type (S_IFMT bits); a name changes type only by being replaced */
    readonly type: number,
    /** st_ino reported for this object, fixed when the node is made */
    readonly ino: bigint,
    /** dirs: the lower merge set; non-dirs: [the lower object] when it has one, else [] */
    private lowerFacts: readonly LowerBranch[],
    /**
     * a lower file with several names: its origin record, under which the hard-link index may
     * hold the copied-up inode that all its names share
     */
    public hardlinkOrigin: Buffer | null,
    /** the upper copy of a directory may hold xattr whiteouts */
    public upperXwhiteouts: boolean,
    private readonly names: Names,
  ) {}

  /** dirs: the lower merge set; non-dirs: [the lower object] when it has one, else [] */
  get lowers(): readonly LowerBranch[] {
    return this.lowerFacts;
  }

  /**
   * Another name of this file brings what it knows of the lowers. A node made from an upper name
   * of a copied-up hard link knows no lower object; a name of it still only below does, and a
   * copy-up of that name needs it. What a node knows is never replaced.
   */
  learn(facts: NodeFacts): void {
    if (this.lowerFacts.length === 0) this.lowerFacts = facts.lowers;
    this.hardlinkOrigin ??= facts.hardlinkOrigin;
  }

  get parent(): UnionNode | null {
    return this.links[0]?.parent ?? null;
  }

  get name(): ByteName {
    return this.links[0]?.name ?? "";
  }

  /** mount-relative path of its first name: "" for the root, and for a node with no name */
  get path(): ByteName {
    if (this.pathGeneration !== this.names.generation) {
      const first = this.links[0];
      this.cachedPath = first === undefined ? "" : linkPath(first);
      this.pathGeneration = this.names.generation;
    }
    return this.cachedPath;
  }

  /** Its upper copy, through the first of its names the upper holds; null when none does. */
  get upper(): Branch | null {
    const layer = this.names.upper;
    if (layer === null) return null;
    for (const link of this.links) {
      if (!link.inUpper) continue;
      if (link !== this.upperLink || this.upperGeneration !== this.names.generation) {
        this.upperBranch = { layer, rel: linkPath(link) };
        this.upperLink = link;
        this.upperGeneration = this.names.generation;
      }
      return this.upperBranch;
    }
    return null;
  }

  /** Its name `name` in `parent`, if it has that one. */
  linkAt(parent: UnionNode, name: ByteName): Link | undefined {
    return this.links.find((l) => l.parent === parent && l.name === name);
  }
}

/** The mount-relative path of a name. */
export function linkPath(link: Link): ByteName {
  if (link.parent === null) return "";
  const dir = link.parent.path;
  return dir === "" ? link.name : `${dir}/${link.name}`;
}

/** The upper branch of one name of a node. */
export function linkBranch(upper: Layer, link: Link): Branch {
  return { layer: upper, rel: linkPath(link) };
}

/** Whether a node is a directory, read from its file type. */
export function isDirNode(node: UnionNode): boolean {
  return node.type === fsc.S_IFDIR;
}

export const ROOT_ID = 1n;

/** the fewest unreferenced nodes kept: more than one request ever holds without a reference */
const MIN_CACHED = 64;

export interface NodeFacts {
  type: number;
  ino: bigint;
  lowers: readonly LowerBranch[];
  hardlinkOrigin: Buffer | null;
  upperXwhiteouts: boolean;
}

export class NodeTable {
  readonly root: UnionNode;
  private readonly names: Names;
  private readonly byId = new Map<bigint, UnionNode>();
  private readonly children = new Map<bigint, Map<ByteName, UnionNode>>();
  /**
   * non-directories known to have several names, by st_ino: where another name of the same
   * file finds its node
   */
  private readonly byIno = new Map<bigint, UnionNode>();
  /** unreferenced nodes, oldest first (recency is each node's `used` flag) */
  private readonly idle = new Map<bigint, UnionNode>();
  private readonly cached: number;
  private lastId = ROOT_ID;

  /** @param cached how many unreferenced nodes to keep (at least MIN_CACHED) */
  constructor(upper: Layer | null, root: NodeFacts, cached: number) {
    this.names = { upper, generation: 0 };
    this.cached = Math.max(cached, MIN_CACHED);
    this.root = this.make(ROOT_ID, root);
    this.root.links.push({ parent: null, name: "", inUpper: upper !== null });
    this.byId.set(ROOT_ID, this.root);
  }

  get size(): number {
    return this.byId.size;
  }

  get(id: bigint): UnionNode | undefined {
    return this.byId.get(id);
  }

  /**
   * The node a known name leads to (it counts as used). A node with several names puts this
   * one first: the kernel addresses a node, not a name, so the name last looked up stands for
   * "the name it was reached by" (which overlayfs copies up, as it copies up the dentry used).
   */
  child(parent: UnionNode, name: ByteName): UnionNode | undefined {
    const node = this.children.get(parent.id)?.get(name);
    if (node === undefined) return undefined;
    node.used = true;
    if (node.links.length > 1) this.putFirst(node, parent, name);
    return node;
  }

  /** The node a known name leads to, leaving the cache and the order of names as they are. */
  known(parent: UnionNode, name: ByteName): UnionNode | undefined {
    return this.children.get(parent.id)?.get(name);
  }

  private putFirst(node: UnionNode, parent: UnionNode, name: ByteName): void {
    const at = node.links.findIndex((l) => l.parent === parent && l.name === name);
    if (at <= 0) return;
    const [link] = node.links.splice(at, 1);
    if (link !== undefined) node.links.unshift(link);
    this.names.generation += 1;
  }

  /**
   * Gives `parent`/`name` to the node with these facts: when `shared` (a name of a file with
   * several that stay one file), the node of that file if one is known, else a new node.
   */
  attach(parent: UnionNode, name: ByteName, facts: NodeFacts, shared: boolean, inUpper: boolean): UnionNode {
    let node = shared ? this.byIno.get(facts.ino) : undefined;
    if (node === undefined || node.type !== facts.type || facts.type === fsc.S_IFDIR) {
      this.lastId += 1n;
      node = this.make(this.lastId, facts);
      this.byId.set(node.id, node);
    } else {
      node.learn(facts);
    }
    this.link(node, parent, name, inUpper);
    if (shared) this.sharesNames(node);
    return node;
  }

  /** `node` is a file with several names: another name of it, when found, joins this node. */
  sharesNames(node: UnionNode): void {
    if (node.type !== fsc.S_IFDIR && node.links.length > 0) this.byIno.set(node.ino, node);
  }

  /** Adds a name to a node (a name it replaces loses its node first). */
  link(node: UnionNode, parent: UnionNode, name: ByteName, inUpper: boolean): void {
    this.unlink(parent, name);
    let siblings = this.children.get(parent.id);
    if (siblings === undefined) {
      siblings = new Map();
      this.children.set(parent.id, siblings);
    }
    siblings.set(name, node);
    node.links.unshift({ parent, name, inUpper });
    // a node that had a name gets a new first one: its path, and those below it, change
    if (node.links.length > 1) this.names.generation += 1;
    parent.kids += 1;
    this.settle(parent);
    this.settle(node);
  }

  /** Drops the name `parent`/`name` (if known); its node lives on while referenced or open. */
  unlink(parent: UnionNode, name: ByteName): void {
    const siblings = this.children.get(parent.id);
    const node = siblings?.get(name);
    if (siblings === undefined || node === undefined) return;
    siblings.delete(name);
    if (siblings.size === 0) this.children.delete(parent.id);
    node.links = node.links.filter((l) => l.parent !== parent || l.name !== name);
    if (node.links.length === 0 && this.byIno.get(node.ino) === node) this.byIno.delete(node.ino);
    this.names.generation += 1;
    parent.kids -= 1;
    this.settle(node);
    this.settle(parent);
  }

  /** rename: the name moves, with whether the upper holds it; a name it lands on is dropped. */
  move(from: UnionNode, fromName: ByteName, to: UnionNode, toName: ByteName): void {
    const node = this.children.get(from.id)?.get(fromName);
    if (node === undefined) return;
    const inUpper = node.linkAt(from, fromName)?.inUpper ?? false;
    this.pin(node);
    this.unlink(from, fromName);
    this.link(node, to, toName, inUpper);
    this.unpin(node);
  }

  /** RENAME_EXCHANGE: two names trade the nodes they lead to. */
  exchange(a: UnionNode, aName: ByteName, b: UnionNode, bName: ByteName): void {
    const nodeA = this.children.get(a.id)?.get(aName);
    const nodeB = this.children.get(b.id)?.get(bName);
    if (nodeA === undefined || nodeB === undefined) return;
    const upperA = nodeA.linkAt(a, aName)?.inUpper ?? false;
    const upperB = nodeB.linkAt(b, bName)?.inUpper ?? false;
    this.pin(nodeA);
    this.pin(nodeB);
    this.unlink(a, aName);
    this.unlink(b, bName);
    this.link(nodeA, b, bName, upperA);
    this.link(nodeB, a, aName, upperB);
    this.unpin(nodeA);
    this.unpin(nodeB);
  }

  /** A reference the kernel now holds (an entry it was given). */
  ref(node: UnionNode): void {
    node.nlookup += 1;
    this.settle(node);
  }

  /** forget: the kernel gives back `count` references. */
  forget(id: bigint, count: number): void {
    const node = this.byId.get(id);
    if (node === undefined || node === this.root) return;
    node.nlookup = Math.max(0, node.nlookup - count);
    this.settle(node);
  }

  /** An open file or directory holds the node. */
  pin(node: UnionNode): void {
    node.opens += 1;
    this.settle(node);
  }

  unpin(node: UnionNode): void {
    node.opens = Math.max(0, node.opens - 1);
    this.settle(node);
  }

  private make(id: bigint, facts: NodeFacts): UnionNode {
    return new UnionNode(
      id,
      facts.type,
      facts.ino,
      facts.lowers,
      facts.hardlinkOrigin,
      facts.upperXwhiteouts,
      this.names,
    );
  }

  /**
   * Files a node by what holds it: held nodes are left alone, a node nothing holds and nothing
   * names is dropped at once, and one nothing holds but a name goes to the cache.
   */
  private settle(node: UnionNode): void {
    if (node === this.root || !node.live) return;
    if (node.nlookup > 0 || node.opens > 0 || node.kids > 0) {
      this.idle.delete(node.id);
      return;
    }
    if (node.links.length === 0) {
      this.drop(node);
      return;
    }
    node.used = true;
    if (!this.idle.has(node.id)) this.idle.set(node.id, node);
    if (this.idle.size > this.cached) this.evict();
  }

  /**
   * Drops the oldest unreferenced nodes until the cache is back to size; one used since the
   * last pass gets a second chance at the end of the line (CLOCK, an LRU without moving an
   * entry on every use).
   */
  private evict(): void {
    for (const [id, node] of this.idle) {
      if (this.idle.size <= this.cached) return;
      this.idle.delete(id);
      if (node.used) {
        node.used = false;
        this.idle.set(id, node);
      } else {
        this.drop(node);
      }
    }
  }

  /** Forgets a node; the object stays usable by whoever still holds it (its names unchanged). */
  private drop(node: UnionNode): void {
    node.live = false;
    this.idle.delete(node.id);
    this.byId.delete(node.id);
    if (this.byIno.get(node.ino) === node) this.byIno.delete(node.ino);
    for (const link of node.links) {
      const parent = link.parent;
      if (parent === null) continue;
      const siblings = this.children.get(parent.id);
      if (siblings?.get(link.name) === node) {
        siblings.delete(link.name);
        if (siblings.size === 0) this.children.delete(parent.id);
      }
      parent.kids -= 1;
      this.settle(parent);
    }
  }
}
