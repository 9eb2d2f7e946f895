/**
 * fuse-native's high-level API speaks in paths; the union core speaks in nodes. This walks a
 * path one component at a time through `UnionFs.find`, which answers from the node table
 * when it can, so a known path costs no system call. It takes no references: libfuse 2.9
 * keeps its own, so the core's nodes are a bounded cache for this transport.
 */
import { FsError } from "../errors.js";
import { splitPath } from "../path/name.js";
import { isDirNode, type UnionNode } from "../union/node-table.js";
import type { UnionFs } from "../union/union-fs.js";

export class PathNodes {
  constructor(private readonly fs: UnionFs) {}

  /** The node for `path`, or ENOENT / ENOTDIR as the kernel would report. */
  resolve(path: string): UnionNode {
    let node = this.fs.table.root;
    for (const name of splitPath(path)) {
      if (!isDirNode(node)) throw new FsError("ENOTDIR", "lookup", path);
      const child = this.fs.find(node, name);
      if (child === null) throw new FsError("ENOENT", "lookup", path);
      node = child;
    }
    return node;
  }

  /** The parent directory node of `path` and the last component's name. */
  resolveParent(path: string): { parent: UnionNode; name: string } {
    const parts = splitPath(path);
    const name = parts.pop();
    if (name === undefined) throw new FsError("EBUSY", "lookup", path);
    const parent = this.resolve(parts.join("/"));
    if (!isDirNode(parent)) throw new FsError("ENOTDIR", "lookup", path);
    return { parent, name };
  }
}
