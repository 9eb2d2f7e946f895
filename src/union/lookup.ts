/**
 * Lookup of one name below a directory node, top-down through the layers, as overlayfs does:
 * a whiteout ends the search, a non-directory ends it (topmost wins), a directory joins the
 * merge set and an opaque directory stops the descent. Below a directory only directories
 * merge: a lower file or symlink under a directory of the same name above is hidden.
 * A directory carrying an overlay redirect (written when a lower directory is renamed), in the
 * upper or in a lower layer, sends the search of the layers below it to the redirect's path: an
 * absolute one ("/a/b") is walked from each lower root below it, a relative one (one name)
 * replaces the name in the parent's merge set, as overlayfs's ovl_lookup does. A redirect
 * overlayfs would refuse ("..", empty components) counts as none (probe.ts), so every walk stays
 * inside the layer roots.
 *
 * Probes of lower layers are cached (lowers never change while mounted); the upper is probed
 * on every call. A `.wh.`-prefixed name is union metadata and is never found.
 */

import { type BigIntStats, constants as fsc } from "node:fs";
import { LRUCache } from "lru-cache";
import { OverlayKey } from "../format/overlay-xattr.js";
import { isMetaName } from "../format/whiteout.js";
import { overlayValue } from "../layers/probe.js";
import type { InodeMap } from "./inode-map.js";
import { type Branch, type ByteName, childBranch, type Layer, realPath } from "./layer.js";
import type { LowerBranch, NodeFacts, UnionNode } from "./node-table.js";
import type { OriginInodes } from "./origin-inodes.js";
import { type DirRedirect, type Probe, probeEntry } from "./probe.js";
import type { LowerListings } from "./readdir.js";

const NONE: Probe = { kind: "none" };

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
export type OriginOf = (path: Buffer, layer: Layer) => Buffer | null;

/** Where the lower layers are searched: a name in the parent's merge set, or a path from the roots. */
type Target =
  | { readonly kind: "name"; readonly name: ByteName }
  | { readonly kind: "path"; readonly parts: readonly ByteName[] };

/** One lower layer's answer: the directory it adds, whether the layers below are searched, and for what. */
interface Step {
  readonly found: { readonly branch: LowerBranch; readonly stat: BigIntStats; readonly isDir: boolean } | null;
  readonly stop: boolean;
  readonly next: Target;
}

/**
 * The target after a redirect on the component that has `after` components below it on the
 * way to the target (ovl_check_redirect): an absolute redirect replaces everything up to that
 * component, a relative one the component alone.
 */
function redirected(target: Target, redirect: DirRedirect, after: number): Target {
  const parts = target.kind === "name" ? [target.name] : target.parts;
  const at = parts.length - 1 - after;
  const head = redirect.absolute ? redirect.parts : [...parts.slice(0, at), ...redirect.parts];
  const all = [...head, ...parts.slice(at + 1)];
  if (target.kind === "name" && !redirect.absolute) return { kind: "name", name: all[0] as ByteName };
  return { kind: "path", parts: all };
}

export class Resolver {
  // bounded by maxSize, not max: a max makes lru-cache allocate all its slots up front (about
  // 27 ms here for 200k, at every mount), where maxSize grows them as the cache fills
  private readonly lowerProbes = new LRUCache<string, Probe>({ maxSize: 200_000, sizeCalculation: () => 1 });

  /**
   * @param listings kept lower listings, which answer probes of names they lack (null: none)
   * @param lowerLayers every lower layer, top-down: where absolute redirects are looked up
   * @param origins decodes origin records (null: copied-up objects report their upper number)
   */
  constructor(
    private readonly inodes: InodeMap,
    private readonly listings: LowerListings | null,
    private readonly lowerLayers: readonly LowerBranch[] = [],
    /** set when the hard-link index is in use */
    private readonly originOf: OriginOf | null = null,
    private readonly origins: OriginInodes | null = null,
  ) {}

  resolveChild(parent: UnionNode, name: ByteName): Resolution | null {
    // `.wh.` entries are whiteouts and opaque marks: listings leave them out, so do lookups
    if (isMetaName(name)) return null;
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
    let target: Target = { kind: "name", name };
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
          if (probe.redirect !== null) target = redirected(target, probe.redirect, 0);
        } else {
          searchLowers = false;
          res.originIno = this.readOriginIno(realPath(res.upper));
        }
      }
    }
    if (searchLowers) this.resolveLowers(parent, target, res);
    if (res.upper === null && res.lowers.length === 0) return null;
    const lower = res.lowers[0];
    if (this.originOf !== null && res.upper === null && !res.isDir && lower !== undefined) {
      if ((res.lowerStats[0]?.nlink ?? 0n) > 1n) res.hardlinkOrigin = this.originOf(realPath(lower), lower.layer);
    }
    return res;
  }

  /** Whether a lower layer shows `name` under `parent`: deleting it then needs a whiteout. */
  existsBelow(parent: UnionNode, name: ByteName): boolean {
    for (const dir of parent.lowers) {
      const probe = this.probeLower(dir, name);
      if (probe.kind === "whiteout") return false;
      if (probe.kind !== "none") return true;
    }
    return false;
  }

  /**
   * Searches the lower layers top-down for `target`: a name in the parent's lower directories
   * until an absolute redirect is met, then a path from the roots of the layers below the one
   * that carried it. Each layer may stop the search or redirect it for the layers below.
   */
  private resolveLowers(parent: UnionNode, first: Target, res: Resolution): void {
    let target = first;
    let dirs = target.kind === "path" ? this.lowerLayers : parent.lowers;
    for (let i = 0; i < dirs.length; i++) {
      const dir = dirs[i] as LowerBranch;
      const step = target.kind === "name" ? this.lookupName(dir, target.name, res) : this.lookupPath(dir, target.parts);
      if (step.found !== null) {
        res.isDir ||= step.found.isDir;
        res.lowers.push(step.found.branch);
        res.lowerStats.push(step.found.stat);
      }
      if (step.stop) return;
      if (step.next.kind === "path" && dirs !== this.lowerLayers) {
        // from here on the path is walked from the roots of the layers below this one
        dirs = this.lowerLayers;
        i = dirs.findIndex((root) => root.layer === dir.layer);
        if (i < 0) return;
      }
      target = step.next;
    }
  }

  /**
   * What one lower directory holds at `name`. A non-directory is the answer only when nothing
   * above was found, and ends the search either way; a directory joins the merge set, unless a
   * non-directory above already is the answer.
   */
  private lookupName(dir: LowerBranch, name: ByteName, res: Resolution): Step {
    const here: Target = { kind: "name", name };
    const probe = this.probeLower(dir, name);
    if (probe.kind === "none") return { found: null, stop: false, next: here };
    if (probe.kind === "whiteout") return { found: null, stop: true, next: here };
    const branch = { ...childBranch(dir, name), xwhiteouts: probe.kind === "dir" && probe.xwhiteouts };
    if (probe.kind === "other") {
      const first = res.upper === null && res.lowers.length === 0;
      return { found: first ? { branch, stat: probe.stat, isDir: false } : null, stop: true, next: here };
    }
    if (res.upper !== null && !res.isDir) return { found: null, stop: true, next: here };
    const found = { branch, stat: probe.stat, isDir: true };
    if (probe.opaque) return { found, stop: true, next: here };
    return { found, stop: false, next: probe.redirect === null ? here : redirected(here, probe.redirect, 0) };
  }

  /**
   * Walks an absolute path down from one lower root (ovl_lookup_layer): a missing component adds
   * nothing; a whiteout or non-directory on the way also ends the search; an opaque directory on
   * the way ends it after this layer, unless a redirect further down is absolute; a redirect on
   * the way changes the path the layers below walk, this layer keeps its own.
   */
  private lookupPath(root: LowerBranch, parts: readonly ByteName[]): Step {
    let dir = root;
    let next: Target = { kind: "path", parts };
    let stop = false;
    for (const [i, part] of parts.entries()) {
      const probe = this.probeLower(dir, part);
      if (probe.kind !== "dir") return { found: null, stop: stop || probe.kind !== "none", next };
      dir = { ...childBranch(dir, part), xwhiteouts: probe.xwhiteouts };
      if (probe.opaque) stop = true;
      else if (probe.redirect !== null) {
        next = redirected(next, probe.redirect, parts.length - 1 - i);
        if (probe.redirect.absolute) stop = false;
      }
      if (i === parts.length - 1) return { found: { branch: dir, stat: probe.stat, isDir: true }, stop, next };
    }
    return { found: null, stop, next };
  }

  /** The lower inode number an upper object's origin record names, if it can be trusted. */
  private readOriginIno(path: Buffer): bigint | null {
    if (this.origins === null) return null;
    const raw = overlayValue(path, OverlayKey.origin);
    const origin = raw === null ? null : this.origins.resolve(raw);
    return origin === null ? null : this.inodes.map(origin.dev, origin.ino);
  }

  private probeLower(dir: LowerBranch, name: ByteName): Probe {
    const key = `${dir.layer.index}\0${dir.rel}\0${name}`;
    let probe = this.lowerProbes.get(key);
    if (probe === undefined) {
      if (this.listings?.lacks(dir, name)) return NONE;
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
