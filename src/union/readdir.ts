/**
 * Merged directory listings: the union of the names in every directory of the merge set, top
 * wins, whiteouts remove names from the layers below them, meta entries never show.
 *
 * Listings of lower directories are kept (LowerListings, shared with lookups); the upper
 * directory is read on every call. Each layer directory is read by src/layers (listDirNames).
 * The order is deterministic: sorted by name, bytewise (names are byte strings).
 */

import { LRUCache } from "lru-cache";
import { type DirNames, listDirNames } from "../layers/probe.js";
import { type Branch, type ByteName, realPath } from "./layer.js";

export interface ListedBranch extends Branch {
  readonly xwhiteouts: boolean;
}

/**
 * Listings of lower directories, read once and kept (lowers never change while mounted), for
 * merged listings and for lookups: a name a kept listing lacks, with no `.wh.` entry for it
 * either, is not in that directory, and costs a lookup no system call.
 */
export class LowerListings {
  private readonly kept = new LRUCache<string, KeptListing>({ max: 4096 });

  /** The listing of a lower directory, read now if it is not kept. */
  names(branch: ListedBranch): DirNames {
    const key = keyOf(branch);
    let listing = this.kept.get(key);
    if (listing === undefined) {
      const names = listDirNames(realPath(branch), branch);
      listing = { ...names, mentioned: new Set([...names.names, ...names.whiteouts]) };
      this.kept.set(key, listing);
    }
    return listing;
  }

  /**
   * Whether a kept listing of `branch` says for sure that it holds nothing at `name`, neither
   * an object nor a whiteout; false when no listing is kept.
   */
  lacks(branch: Branch, name: ByteName): boolean {
    const listing = this.kept.get(keyOf(branch));
    return listing !== undefined && !listing.mentioned.has(name);
  }
}

interface KeptListing extends DirNames {
  /** its names and the names it whites out */
  readonly mentioned: ReadonlySet<ByteName>;
}

function keyOf(branch: Branch): string {
  return `${branch.layer.index}\0${branch.rel}`;
}

export class DirMerger {
  constructor(private readonly lowerListings: LowerListings) {}

  /** Names visible in the merged directory, sorted. `branches` are top-down, upper first. */
  mergedNames(branches: readonly ListedBranch[]): ByteName[] {
    const seen = new Set<ByteName>();
    const hidden = new Set<ByteName>();
    for (const branch of branches) {
      const listing = branch.layer.writable ? listDirNames(realPath(branch), branch) : this.lowerListings.names(branch);
      for (const name of listing.names) {
        if (!hidden.has(name)) seen.add(name);
      }
      for (const name of listing.whiteouts) hidden.add(name);
    }
    return [...seen].sort();
  }
}
