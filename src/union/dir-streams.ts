/**
 * Open directories (fuse-native's; devfuse reads listings by offset alone, see listings.ts): the
 * first readdir takes a snapshot of the merged listing, readdir(offset) serves it in chunks,
 * releasedir drops it. The snapshot is not taken at opendir: a kernel that caches listings opens
 * a directory without reading it. A listing that changes between two chunks therefore neither
 * repeats nor skips an entry; reading again from offset 0 (rewinddir) takes a fresh snapshot.
 * An entry's `next` is the offset to resume after it, as FUSE's readdir replies carry one.
 */
import { FsError } from "../errors.js";
import type { ByteName } from "./layer.js";
import type { UnionNode } from "./node-table.js";

export interface DirEntry {
  name: ByteName;
  ino: bigint;
  mode: number;
}

export interface StreamEntry extends DirEntry {
  next: number;
}

interface OpenDir {
  readonly node: UnionNode;
  /** null until the first readdir */
  entries: readonly DirEntry[] | null;
}

export class DirStreams {
  private readonly open = new Map<number, OpenDir>();
  private next = 1;

  /** @param list the merged listing of a directory node, `.` and `..` first */
  constructor(private readonly list: (node: UnionNode) => DirEntry[]) {}

  get size(): number {
    return this.open.size;
  }

  opendir(node: UnionNode): number {
    const dh = this.next++;
    this.open.set(dh, { node, entries: null });
    return dh;
  }

  /** The entries from `offset` on, at most `max` of them. */
  readdir(dh: number, offset: number, max = Number.POSITIVE_INFINITY): StreamEntry[] {
    const dir = this.open.get(dh);
    if (dir === undefined) throw new FsError("EBADF", "readdir");
    if (offset === 0 || dir.entries === null) dir.entries = this.list(dir.node);
    const entries = dir.entries;
    const end = Math.min(entries.length, offset + max);
    return entries.slice(offset, end).map((e, i) => ({ ...e, next: offset + i + 1 }));
  }

  /** Drops the stream; returns the directory it was of (undefined if `dh` was not open). */
  releasedir(dh: number): UnionNode | undefined {
    const node = this.open.get(dh)?.node;
    this.open.delete(dh);
    return node;
  }
}
