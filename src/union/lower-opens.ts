/**
 * Files opened from a lower layer follow the object's copy-up, as overlayfs's ovl_real_fdget
 * does (Linux >= 4.19): once the object has an upper copy (or the hard-link index entry another
 * name's copy-up made), the next use of such a file reopens that copy with the file's flags.
 * Otherwise it would go on reading data, and fstat-ing attributes, the union no longer shows.
 *
 * The copy is put under the handle's fd number in one step (dup3), so a transport reading that
 * number on another thread meets the old file or the new one, never a closed or reused number.
 * A handle of the upper copy pays nothing: only handles opened from below are checked.
 */
import { closeSync, constants as fsc, openSync } from "node:fs";
import { replaceFd } from "../sys/dup.js";
import type { HandleTable, OpenFile } from "./handles.js";
import type { HardlinkIndex } from "./hardlink-index.js";
import { realPath } from "./layer.js";
import type { UnionNode } from "./node-table.js";

/** flags that act once, at open, and must not act again when the copy is opened */
const REOPEN_IGNORED = fsc.O_CREAT | fsc.O_EXCL | fsc.O_NOCTTY | fsc.O_TRUNC;

export class LowerOpens {
  /** handles opened from below and not switched yet, by node */
  private readonly byNode = new Map<UnionNode, Set<number>>();

  /** @param index the hard-link index; null on a mount without an upper, where nothing moves */
  constructor(
    private readonly handles: HandleTable,
    private readonly index: HardlinkIndex | null,
  ) {}

  /** A handle was added; one opened from below is watched. */
  added(fh: number, open: OpenFile): void {
    if (open.inUpper || this.index === null) return;
    const fhs = this.byNode.get(open.node);
    if (fhs === undefined) this.byNode.set(open.node, new Set([fh]));
    else fhs.add(fh);
  }

  /** A handle is being released. */
  released(fh: number, open: OpenFile): void {
    if (!open.inUpper) this.forget(open.node, fh);
  }

  /** Switches a handle opened from below to the object's copy, if it has one now. */
  follow(fh: number, open: OpenFile): void {
    if (this.index === null) return;
    const { node } = open;
    const branch = node.upper ?? (node.hardlinkOrigin === null ? null : this.index.find(node.hardlinkOrigin));
    if (branch === null) return;
    const fd = openSync(realPath(branch), (open.flags & ~REOPEN_IGNORED) | fsc.O_NOFOLLOW);
    try {
      replaceFd(fd, open.fd);
    } finally {
      closeSync(fd);
    }
    open.inUpper = true;
    this.forget(node, fh);
  }

  /**
   * A name of `node` is about to go: its files open from below follow a copy-up made since,
   * now, while the node still has the name that finds the copy (maybe its last).
   */
  nameGoes(node: UnionNode): void {
    const fhs = this.byNode.get(node);
    if (fhs === undefined) return;
    for (const fh of [...fhs]) {
      const open = this.handles.get(fh);
      try {
        if (open !== undefined) this.follow(fh, open);
      } catch {
        // the name goes all the same; that file goes on serving the lower object
      }
    }
  }

  get size(): number {
    return this.byNode.size;
  }

  private forget(node: UnionNode, fh: number): void {
    const fhs = this.byNode.get(node);
    fhs?.delete(fh);
    if (fhs?.size === 0) this.byNode.delete(node);
  }
}
