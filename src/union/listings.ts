/**
 * Merged listings read by offset alone, with no open directory behind them: each entry's
 * offset (its cookie) is a hash of its name and the listing is in cookie order, as ext4 orders
 * a hashed directory for the same reason. A reader resumes after any cookie whatever changed in
 * between: an entry removed since shifts no other (nothing skipped, nothing repeated), an entry
 * added appears or not, as POSIX allows for a directory changed while it is read.
 *
 * This is what a FUSE connection that never opens directories needs: the kernel then reads a
 * directory by (node, offset) and keeps the listing in its own cache, so a walk of a directory
 * tree it has seen costs the daemon no request at all.
 *
 * Listings are kept for the directories read last, until anything in the tree changes: a
 * directory is read in several requests, each resuming where the last ended.
 *
 * Two names of one directory with the same 53-bit hash would share a cookie, and a reader that
 * stopped between them would skip the second; with a million names in one directory the chance
 * that any two collide is about 1 in 20 million.
 */
import type { DirEntry, StreamEntry } from "./dir-streams.js";
import type { ByteName } from "./layer.js";
import type { UnionNode } from "./node-table.js";

/** `.` and `..` come first, with these cookies; a name's cookie is above them */
const DOT = 1;
const DOTDOT = 2;
const FIRST_NAME_COOKIE = 3;
/** the listings kept: enough for the directories a few readers go through at once */
const KEPT = 64;

interface Listing {
  readonly generation: number;
  /** in cookie order */
  readonly entries: readonly StreamEntry[];
}

export class Listings {
  private readonly kept = new Map<UnionNode, Listing>();
  private generation = 0;

  /** @param list the merged listing of a directory node, `.` and `..` first */
  constructor(private readonly list: (node: UnionNode) => DirEntry[]) {}

  /** Something in the tree changed: no listing kept so far is used again. */
  changed(): void {
    this.generation += 1;
  }

  /** The entries of `node` after cookie `after` (0: from the start), at most `max` of them. */
  from(node: UnionNode, after: number, max: number): StreamEntry[] {
    const entries = this.listing(node);
    let lo = 0;
    let hi = entries.length;
    while (lo < hi) {
      const mid = (lo + hi) >>> 1;
      if ((entries[mid] as StreamEntry).next <= after) lo = mid + 1;
      else hi = mid;
    }
    return entries.slice(lo, lo + max);
  }

  private listing(node: UnionNode): readonly StreamEntry[] {
    const kept = this.kept.get(node);
    if (kept !== undefined && kept.generation === this.generation) return kept.entries;
    const entries = this.list(node).map(
      (e, i): StreamEntry => ({ ...e, next: i === 0 ? DOT : i === 1 ? DOTDOT : cookieOf(e.name) }),
    );
    entries.sort((a, b) => a.next - b.next);
    this.kept.delete(node);
    if (this.kept.size >= KEPT) {
      const oldest = this.kept.keys().next();
      if (!oldest.done) this.kept.delete(oldest.value);
    }
    this.kept.set(node, { generation: this.generation, entries });
    return entries;
  }
}

/**
 * A name's cookie: a 53-bit hash (two FNV-1a lanes over its bytes), above the cookies of `.`
 * and `..`, and a safe integer, as offsets travel as numbers.
 */
export function cookieOf(name: ByteName): number {
  let lo = 0x811c9dc5;
  let hi = 0x01000193;
  for (let i = 0; i < name.length; i++) {
    const c = name.charCodeAt(i);
    lo = Math.imul(lo ^ c, 0x01000193);
    hi = Math.imul(hi ^ c, 0x5bd1e995) ^ (hi >>> 15);
  }
  const cookie = (hi & 0x1fffff) * 2 ** 32 + (lo >>> 0);
  return cookie < FIRST_NAME_COOKIE ? cookie + FIRST_NAME_COOKIE : cookie;
}
