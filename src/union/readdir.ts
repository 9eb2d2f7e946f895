/**
 * Merged directory listings: the union of the names in every directory of the merge set, top
 * wins, whiteouts remove names from the layers below them, meta entries never show.
 *
 * Listings of lower directories are cached (lowers never change while mounted); the upper
 * directory is read on every call. Each layer directory is read by src/layers (listDirNames).
 * The order is deterministic: sorted by name, bytewise (names are byte strings).
 */

import { LRUCache } from "lru-cache";
import { type DirNames, listDirNames } from "../layers/probe.js";
import { type Branch, type ByteName, realPath } from "./layer.js";

export interface ListedBranch extends Branch {
  readonly xwhiteouts: boolean;
}

export class DirMerger {
  private readonly lowerListings = new LRUCache<string, DirNames>({ max: 4096 });

  /** Names visible in the merged directory, sorted. `branches` are top-down, upper first. */
  mergedNames(branches: readonly ListedBranch[]): ByteName[] {
    const seen = new Set<ByteName>();
    const hidden = new Set<ByteName>();
    for (const branch of branches) {
      const listing = this.listing(branch);
      for (const name of listing.names) {
        if (!hidden.has(name)) seen.add(name);
      }
      for (const name of listing.whiteouts) hidden.add(name);
    }
    return [...seen].sort();
  }

  private listing(branch: ListedBranch): DirNames {
    if (branch.layer.writable) return listDirNames(realPath(branch), branch);
    const key = `${branch.layer.index}\0${branch.rel}`;
    let listing = this.lowerListings.get(key);
    if (listing === undefined) {
      listing = listDirNames(realPath(branch), branch);
      this.lowerListings.set(key, listing);
    }
    return listing;
  }
}
