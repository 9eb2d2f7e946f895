/**
 * Lookup of one name below a directory node, top-down through the layers, as overlayfs does:
 * a whiteout ends the search, a non-directory ends it (topmost wins), a directory joins the
 * merge set and an opaque directory stops the descent. Below a directory only directories
 * merge: a lower file or symlink under a directory of the same name above is hidden.
 * An upper directory carrying an overlay redirect (written when a lower directory is renamed)
 * merges with the lower directories at the redirect's path instead of at its own name.
 *
 * Probes of lower layers are cached (lowers never change while mounted); the upper is probed
 * on every call.
 */

import { type BigIntStats, constants as fsc } from "node:fs";
import { LRUCache } from "lru-cache";
import { OverlayKey } from "../format/overlay-xattr.js";
import type { InodeMap } from "./inode-map.js";
import { type Branch, childBranch, type Layer, realPath } from "./layer.js";
import type { LowerBranch, NodeFacts, UnionNode } from "./node-table.js";
import type { OriginInodes } from "./origin-inodes.js";
import { overlayXattrRaw, type Probe, probeEntry } from "./probe.js";

export interface Resolution {
  isDir: boolean;
  upper: Branch | null;
  upperStat: BigIntStats | null;
  upperXwhiteouts: boolean;
  lowers: LowerBranch[];
  lowerStats: BigIntStats[];
  /** an upper non-directory copied up from below: the inode number of its lower origin */
  originIno: bigint | null;
  /** a lower-only file with several names: its origin record (hard-link index key) */
  hardlinkOrigin: Buffer | null;
}

/** Computes the origin record of a lower object; null when none can be made. */
export type OriginOf = (path: string, layer: Layer) => Buffer | null;

export class Resolver {
  private readonly lowerProbes = new LRUCache<string, Probe>({ max: 200_000 });

  /**
   * @param lowerLayers every lower layer, top-down: where absolute redirects are looked up
   * @param origins decodes origin records (null: copied-up objects report their upper number)
   */
  constructor(
    private readonly inodes: InodeMap,
    private readonly lowerLayers: readonly LowerBranch[] = [],
    /** set when the hard-link index is in use */
    private readonly originOf: OriginOf | null = null,
    private readonly origins: OriginInodes | null = null,
  ) {}

  resolveChild(parent: UnionNode, name: string): Resolution | null {
    const res: Resolution = {
      isDir: false,
      upper: null,
      upperStat: null,
      upperXwhiteouts: false,
      lowers: [],
      lowerStats: [],
      originIno: null,
      hardlinkOrigin: null,
    };
    let searchLowers = true;
    let redirect: string | null = null;
    if (parent.upper !== null) {
      const probe = probeEntry(realPath(parent.upper), name, parent.upperXwhiteouts);
      if (probe.kind === "whiteout") return null;
      if (probe.kind !== "none") {
        res.upper = childBranch(parent.upper, name);
        res.upperStat = probe.stat;
        res.isDir = probe.kind === "dir";
        if (probe.kind === "dir") {
          res.upperXwhiteouts = probe.xwhiteouts;
          searchLowers = !probe.opaque;
          redirect = probe.redirect;
        } else {
          searchLowers = false;
          res.originIno = this.readOriginIno(realPath(res.upper));
        }
      }
    }
    if (searchLowers && redirect?.startsWith("/")) this.resolveAbsolute(redirect, res);
    else if (searchLowers) this.resolveLowers(parent, redirect ?? name, res);
    if (res.upper === null && res.lowers.length === 0) return null;
    const lower = res.lowers[0];
    if (this.originOf !== null && res.upper === null && !res.isDir && lower !== undefined) {
      if ((res.lowerStats[0]?.nlink ?? 0n) > 1n) res.hardlinkOrigin = this.originOf(realPath(lower), lower.layer);
    }
    return res;
  }

  /** Whether a lower layer shows `name` under `parent`: deleting it then needs a whiteout. */
  existsBelow(parent: UnionNode, name: string): boolean {
    for (const dir of parent.lowers) {
      const probe = this.probeLower(dir, name);
      if (probe.kind === "whiteout") return false;
      if (probe.kind !== "none") return true;
    }
    return false;
  }

  private resolveLowers(parent: UnionNode, name: string, res: Resolution): void {
    for (const dir of parent.lowers) {
      const probe = this.probeLower(dir, name);
      if (probe.kind === "none") continue;
      if (probe.kind === "whiteout") return;
      if (probe.kind === "other") {
        if (res.upper === null && res.lowers.length === 0) {
          res.lowers.push({ ...childBranch(dir, name), xwhiteouts: false });
          res.lowerStats.push(probe.stat);
        }
        return;
      }
      if (res.upper !== null && !res.isDir) return;
      res.isDir = true;
      res.lowers.push({ ...childBranch(dir, name), xwhiteouts: probe.xwhiteouts });
      res.lowerStats.push(probe.stat);
      if (probe.opaque) return;
    }
  }

  /**
   * The lower directories at an absolute redirect path: each lower layer is walked from its
   * root; a layer where the path is missing, whited out or not a directory adds nothing, and a
   * layer where the path crosses or ends in an opaque directory is the last one searched.
   */
  private resolveAbsolute(redirect: string, res: Resolution): void {
    const parts = redirect.split("/").filter((p) => p.length > 0);
    for (const root of this.lowerLayers) {
      let dir: LowerBranch = root;
      let stop = false;
      let found: { branch: LowerBranch; stat: BigIntStats } | null = null;
      for (const [i, part] of parts.entries()) {
        const probe = this.probeLower(dir, part);
        if (probe.kind !== "dir") {
          stop = probe.kind !== "none";
          break;
        }
        dir = { ...childBranch(dir, part), xwhiteouts: probe.xwhiteouts };
        if (probe.opaque) stop = true;
        if (i === parts.length - 1) found = { branch: dir, stat: probe.stat };
      }
      if (found !== null) {
        res.isDir = true;
        res.lowers.push(found.branch);
        res.lowerStats.push(found.stat);
      }
      if (stop) return;
    }
  }

  /** The lower inode number an upper object's origin record names, if it can be trusted. */
  private readOriginIno(path: string): bigint | null {
    if (this.origins === null) return null;
    const raw = overlayXattrRaw(path, OverlayKey.origin);
    const origin = raw === null ? null : this.origins.resolve(raw);
    return origin === null ? null : this.inodes.map(origin.dev, origin.ino);
  }

  private probeLower(dir: LowerBranch, name: string): Probe {
    const key = `${dir.layer.index}\0${dir.rel}\0${name}`;
    let probe = this.lowerProbes.get(key);
    if (probe === undefined) {
      probe = probeEntry(realPath(dir), name, dir.xwhiteouts);
      this.lowerProbes.set(key, probe);
    }
    return probe;
  }

  /**
   * st_ino as overlayfs reports it on one filesystem: a directory that exists below takes the
   * topmost lower directory's number; any other object its topmost copy's.
   */
  inoOf(res: Resolution): bigint {
    const lowerStat = res.lowerStats[0];
    const lower = res.lowers[0];
    if (lowerStat !== undefined && lower !== undefined && (res.isDir || res.upper === null)) {
      return this.inodes.map(lower.layer.dev, lowerStat.ino);
    }
    if (res.originIno !== null) return res.originIno;
    if (res.upper !== null && res.upperStat !== null) {
      return this.inodes.map(res.upper.layer.dev, res.upperStat.ino);
    }
    throw new Error("resolution without any branch");
  }

  /** What a node made from this resolution knows. */
  factsOf(res: Resolution): NodeFacts {
    return {
      type: typeOf(res),
      ino: this.inoOf(res),
      lowers: res.lowers,
      hardlinkOrigin: res.hardlinkOrigin,
      upperXwhiteouts: res.upperXwhiteouts,
    };
  }
}

/** The link count of the object a resolution found (its topmost copy's). */
export function nlinkOf(res: Resolution): bigint {
  return (res.upperStat ?? res.lowerStats[0])?.nlink ?? 1n;
}

function typeOf(res: Resolution): number {
  if (res.isDir) return fsc.S_IFDIR;
  const st = res.upperStat ?? res.lowerStats[0];
  if (st === undefined) throw new Error("resolution without any branch");
  return Number(st.mode) & fsc.S_IFMT;
}

export type { Layer };
