/**
 * Lookup of one name below a directory node, top-down through the layers, as overlayfs does:
 * a whiteout ends the search, a non-directory ends it (topmost wins), a directory joins the
 * merge set and an opaque directory stops the descent. Below a directory only directories
 * merge: a lower file or symlink under a directory of the same name above is hidden.
 *
 * Probes of lower layers are cached (lowers never change while mounted); the upper is probed
 * on every call.
 */
import { LRUCache } from "lru-cache";
import type { BigIntStats } from "node:fs";
import type { InodeMap } from "./inode-map.js";
import { type Branch, childBranch, type Layer, realPath } from "./layer.js";
import type { LowerBranch, NodeTable, UnionNode } from "./node-table.js";
import { type Probe, probeEntry } from "./probe.js";

export interface Resolution {
  isDir: boolean;
  upper: Branch | null;
  upperStat: BigIntStats | null;
  upperXwhiteouts: boolean;
  lowers: LowerBranch[];
  lowerStats: BigIntStats[];
}

export class Resolver {
  private readonly lowerProbes = new LRUCache<string, Probe>({ max: 200_000 });

  constructor(private readonly inodes: InodeMap) {}

  async resolveChild(parent: UnionNode, name: string): Promise<Resolution | null> {
    const res: Resolution = {
      isDir: false,
      upper: null,
      upperStat: null,
      upperXwhiteouts: false,
      lowers: [],
      lowerStats: [],
    };
    let searchLowers = true;
    if (parent.upper !== null) {
      const probe = await probeEntry(realPath(parent.upper), name, parent.upperXwhiteouts);
      if (probe.kind === "whiteout") return null;
      if (probe.kind !== "none") {
        res.upper = childBranch(parent.upper, name);
        res.upperStat = probe.stat;
        res.isDir = probe.kind === "dir";
        if (probe.kind === "dir") {
          res.upperXwhiteouts = probe.xwhiteouts;
          searchLowers = !probe.opaque;
        } else {
          searchLowers = false;
        }
      }
    }
    if (searchLowers) await this.resolveLowers(parent, name, res);
    if (res.upper === null && res.lowers.length === 0) return null;
    return res;
  }

  private async resolveLowers(parent: UnionNode, name: string, res: Resolution): Promise<void> {
    for (const dir of parent.lowers) {
      const probe = await this.probeLower(dir, name);
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

  private async probeLower(dir: LowerBranch, name: string): Promise<Probe> {
    const key = `${dir.layer.index}\0${dir.rel}\0${name}`;
    let probe = this.lowerProbes.get(key);
    if (probe === undefined) {
      probe = await probeEntry(realPath(dir), name, dir.xwhiteouts);
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
    if (res.upper !== null && res.upperStat !== null) {
      return this.inodes.map(res.upper.layer.dev, res.upperStat.ino);
    }
    throw new Error("resolution without any branch");
  }

  makeNode(table: NodeTable, parent: UnionNode, name: string, res: Resolution): UnionNode {
    const node: UnionNode = {
      id: table.nextId(),
      parent,
      name,
      path: parent.path === "" ? name : `${parent.path}/${name}`,
      isDir: res.isDir,
      upper: res.upper,
      upperXwhiteouts: res.upperXwhiteouts,
      lowers: res.lowers,
      ino: this.inoOf(res),
    };
    table.add(node);
    return node;
  }
}

export type { Layer };
