/**
 * What the operation modules (create, remove, rename, setattr) use of the union. UnionFs
 * implements it; declaring it here, below both, keeps the operations from importing the class
 * that dispatches to them.
 */
import type { CopyUp } from "./copy-up.js";
import type { HardlinkIndex } from "./hardlink-index.js";
import type { Branch, ByteName } from "./layer.js";
import type { Resolver } from "./lookup.js";
import type { NodeTable, UnionNode } from "./node-table.js";
import type { UpperWriter } from "./upper-writer.js";

/** What writes need: present only when the stack has an upper. */
export interface WriteSide {
  readonly writer: UpperWriter;
  readonly copyUp: CopyUp;
  readonly index: HardlinkIndex;
  /** false on a volatile mount: nothing is synced */
  readonly durable: boolean;
}

export interface UnionContext {
  readonly table: NodeTable;
  readonly resolver: Resolver;
  /** The write machinery; EROFS on a mount without an upper. */
  side(): WriteSide;
  /** The node `name` in `parent` leads to, or null, taking no reference. */
  find(parent: UnionNode, name: ByteName): UnionNode | null;
  /** Where an object's data and attributes are read. */
  data(node: UnionNode): Branch;
  /** True when the merged view of a directory holds nothing but `.` and `..`. */
  isEmptyDir(node: UnionNode): boolean;
  /** After a directory in the upper was renamed or removed: paths cached by fd are stale. */
  upperDirsMoved(): void;
}
