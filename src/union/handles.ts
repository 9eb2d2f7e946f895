/**
 * Open-file handles: the number handed to FUSE maps to the raw fd opened in a layer. A raw fd
 * (not a FileHandle) is valid in every thread and is what FUSE passthrough hands the kernel.
 * Behind a small interface so a table shared between worker threads can replace the Map.
 */
import type { UnionNode } from "./node-table.js";

export interface OpenFile {
  readonly node: UnionNode;
  readonly fd: number;
  readonly flags: number;
  /**
   * the fd is of the upper copy (or the index entry), never of a lower layer's file; a file
   * opened from below becomes one once the object is copied up (UnionFs.fd)
   */
  inUpper: boolean;
}

export interface HandleTable {
  add(open: OpenFile): number;
  get(fh: number): OpenFile | undefined;
  remove(fh: number): OpenFile | undefined;
  /** the handles open now */
  open(): number[];
  readonly size: number;
}

export class MapHandleTable implements HandleTable {
  private readonly files = new Map<number, OpenFile>();
  private next = 1;

  get size(): number {
    return this.files.size;
  }

  add(open: OpenFile): number {
    // fuse-native carries fh as a non-zero uint32; wrap around, skipping numbers in use.
    while (this.files.has(this.next) || this.next === 0) this.next = (this.next + 1) >>> 0;
    const fh = this.next;
    this.next = (this.next + 1) >>> 0;
    this.files.set(fh, open);
    return fh;
  }

  open(): number[] {
    return [...this.files.keys()];
  }

  get(fh: number): OpenFile | undefined {
    return this.files.get(fh);
  }

  remove(fh: number): OpenFile | undefined {
    const open = this.files.get(fh);
    this.files.delete(fh);
    return open;
  }
}
