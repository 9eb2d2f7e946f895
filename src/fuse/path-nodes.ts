/**
 * fuse-native's high-level API speaks in paths; the union core speaks in nodes. This walks a
 * path one component at a time through `UnionFs.find`, which answers from the node table
 * when it can, so a known path costs no system call. It takes no references: libfuse 2.9
 * keeps its own, so the core's nodes are a bounded cache for this transport.
 *
 * The binding hands paths over as JS strings it decoded from UTF-8; the core's names are bytes
 * (byte strings, see src/union/layer.ts), so each path is converted back to its bytes here.
 * A limit of the binding: a name that is not valid UTF-8 cannot cross it intact. Such a path
 * arrives with U+FFFD in place of its bad bytes and finds nothing, and such a name in a listing
 * or a symlink target is sent out with U+FFFD (adapter.ts); the core itself keeps it intact.
 */
import { FsError } from "../errors.js";
import { splitPath, textToBytes } from "../path/name.js";
import { isDirNode, type UnionNode } from "../union/node-table.js";
import type { UnionFs } from "../union/union-fs.js";

export class PathNodes {
  constructor(private readonly fs: UnionFs) {}

  /** The node for `path`, or ENOENT / ENOTDIR as the kernel would report. */
  resolve(path: string): UnionNode {
    return this.walk(splitPath(textToBytes(path)), path);
  }

  /** The node the byte-string components `parts` of `path` lead to. */
  private walk(parts: readonly string[], path: string): UnionNode {
    let node = this.fs.table.root;
    for (const name of parts) {
      if (!isDirNode(node)) throw new FsError("ENOTDIR", "lookup", path);
      const child = this.fs.find(node, name);
      if (child === null) throw new FsError("ENOENT", "lookup", path);
      node = child;
    }
    return node;
  }

  /** The parent directory node of `path` and the last component's name (a byte string). */
  resolveParent(path: string): { parent: UnionNode; name: string } {
    const parts = splitPath(textToBytes(path));
    const name = parts.pop();
    if (name === undefined) throw new FsError("EBUSY", "lookup", path);
    const parent = this.walk(parts, path);
    if (!isDirNode(parent)) throw new FsError("ENOTDIR", "lookup", path);
    return { parent, name };
  }
}
