/**
 * Merged directory listings: the union of the names in every directory of the merge set, top
 * wins, whiteouts remove names from the layers below them, meta entries never show.
 *
 * Listings of lower directories are cached (lowers never change while mounted); the upper
 * directory is read on every call. The order is deterministic: sorted by name.
 */

import { readdirSync } from "node:fs";
import { join } from "node:path";
import { LRUCache } from "lru-cache";
import { OverlayKey } from "../format/overlay-xattr.js";
import { isCharDevWhiteout, isMetaName, mayBeXattrWhiteout, whiteoutTarget } from "../format/whiteout.js";
import { type Branch, realPath } from "./layer.js";
import { lstatOrNull, overlayXattr } from "./probe.js";

export interface LayerListing {
  /** names of real entries, meta entries and whiteouts removed */
  readonly names: readonly string[];
  /** names this directory whites out for the layers below */
  readonly whiteouts: readonly string[];
}

/** Reads one layer's directory and separates entries from whiteouts. */
export function listLayerDir(dir: string, xwhiteouts: boolean): LayerListing {
  const names: string[] = [];
  const whiteouts: string[] = [];
  for (const entry of readdirSync(dir, { withFileTypes: true })) {
    const name = entry.name;
    if (isMetaName(name)) {
      const target = whiteoutTarget(name);
      if (target !== null) whiteouts.push(target);
      continue;
    }
    if (entry.isCharacterDevice() || (xwhiteouts && entry.isFile())) {
      if (isWhiteoutEntry(join(dir, name))) {
        whiteouts.push(name);
        continue;
      }
    }
    names.push(name);
  }
  return { names, whiteouts };
}

function isWhiteoutEntry(path: string): boolean {
  const st = lstatOrNull(path);
  if (st === null) return false;
  if (isCharDevWhiteout(st)) return true;
  return mayBeXattrWhiteout(st) && overlayXattr(path, OverlayKey.whiteout) !== null;
}

export interface ListedBranch extends Branch {
  readonly xwhiteouts: boolean;
}

export class DirMerger {
  private readonly lowerListings = new LRUCache<string, LayerListing>({ max: 4096 });

  /** Names visible in the merged directory, sorted. `branches` are top-down, upper first. */
  mergedNames(branches: readonly ListedBranch[]): string[] {
    const seen = new Set<string>();
    const hidden = new Set<string>();
    for (const branch of branches) {
      const listing = this.listing(branch);
      for (const name of listing.names) {
        if (!hidden.has(name)) seen.add(name);
      }
      for (const name of listing.whiteouts) hidden.add(name);
    }
    return [...seen].sort();
  }

  private listing(branch: ListedBranch): LayerListing {
    if (branch.layer.writable) return listLayerDir(realPath(branch), branch.xwhiteouts);
    const key = `${branch.layer.index}\0${branch.rel}`;
    let listing = this.lowerListings.get(key);
    if (listing === undefined) {
      listing = listLayerDir(realPath(branch), branch.xwhiteouts);
      this.lowerListings.set(key, listing);
    }
    return listing;
  }
}
