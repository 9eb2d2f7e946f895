/**
 * Where a run's cgroup goes and what is written into it: pure functions of the mount table,
 * /proc/self/cgroup and the limits. cgroup.ts does the writing.
 *
 * Hosts come in three shapes, all handled per controller:
 * - v2 only: one cgroup2 mount; a controller is usable when the root's cgroup.controllers
 *   lists it; it is enabled for children through cgroup.subtree_control of every ancestor.
 * - v1 only: one mount per controller (or co-mounted group, "cpu,cpuacct"), named in the
 *   mount's super options.
 * - hybrid (this project's reference machine): v1 mounts for memory, cpu, pids, ... and a
 *   cgroup2 mount (often /sys/fs/cgroup/unified) with few or no controllers.
 * A controller the v2 root offers is taken from v2, else from the v1 mount that has it; if
 * neither has it, a limit that needs it is an error, never dropped.
 *
 * The parent of the run's cgroup: `--cgroup-parent` when given (relative to each hierarchy's
 * root). Otherwise, on v1, the caller's own cgroup in that hierarchy, so the run's limits nest
 * inside whatever limits the caller already has; on v2, the hierarchy's root, as docker's
 * cgroupfs driver does (v2 forbids controllers in a cgroup's children while the cgroup holds
 * processes, so the caller's own cgroup cannot be the parent).
 */
import { join } from "node:path";
import type { MountEntry } from "../sys/mountinfo.js";
import { CPU_PERIOD_US, cpuQuotaUs, formatBytes, type Limits } from "./limits.js";

export type Controller = "memory" | "cpu" | "pids";

export interface Hierarchy {
  version: 1 | 2;
  mountpoint: string;
  /** the mount's root inside the hierarchy (mountinfo field 4), "/" unless a container bound a subtree */
  root: string;
  /** v1: from the super options; v2: from the root's cgroup.controllers, filled in by the caller */
  controllers: string[];
}

/** One write into a cgroup file. */
export interface CgroupWrite {
  /** absolute path of the file */
  file: string;
  value: string;
  /** skipped when the file does not exist (memsw, swap.max without swap accounting) */
  optional?: boolean;
  /** what the write is for, for error messages */
  what: string;
}

/** How to read the count of OOM kills in a cgroup. */
export interface OomCounter {
  file: string;
  key: string;
}

/** The v1/v2 difference, behind one interface. */
export interface CgroupBackend {
  readonly version: 1 | 2;
  /** writes in the new cgroup `dir` that apply `limits` for `controllers` */
  limitWrites(dir: string, limits: Limits, controllers: readonly Controller[]): CgroupWrite[];
  /** writes in ancestor `dir` that let its children use `controllers` (v2 only) */
  enableWrites(dir: string, controllers: readonly Controller[]): CgroupWrite[];
  procsFile(dir: string): string;
  oomCounter(dir: string): OomCounter;
}

export const V1: CgroupBackend = {
  version: 1,
  limitWrites(dir, limits, controllers) {
    const out: CgroupWrite[] = [];
    if (controllers.includes("memory") && limits.memoryBytes !== undefined) {
      const bytes = String(limits.memoryBytes);
      const what = `--memory ${formatBytes(limits.memoryBytes)}`;
      // limit first: memsw may never be below it
      out.push({ file: join(dir, "memory.limit_in_bytes"), value: bytes, what });
      out.push({ file: join(dir, "memory.memsw.limit_in_bytes"), value: bytes, optional: true, what });
    }
    if (controllers.includes("cpu") && limits.cpus !== undefined) {
      const what = `--cpus ${limits.cpus}`;
      out.push({ file: join(dir, "cpu.cfs_period_us"), value: String(CPU_PERIOD_US), what });
      out.push({ file: join(dir, "cpu.cfs_quota_us"), value: String(cpuQuotaUs(limits.cpus)), what });
    }
    if (controllers.includes("pids") && limits.pids !== undefined) {
      out.push({ file: join(dir, "pids.max"), value: String(limits.pids), what: `--pids ${limits.pids}` });
    }
    return out;
  },
  enableWrites: () => [],
  procsFile: (dir) => join(dir, "cgroup.procs"),
  oomCounter: (dir) => ({ file: join(dir, "memory.oom_control"), key: "oom_kill" }),
};

export const V2: CgroupBackend = {
  version: 2,
  limitWrites(dir, limits, controllers) {
    const out: CgroupWrite[] = [];
    if (controllers.includes("memory") && limits.memoryBytes !== undefined) {
      const what = `--memory ${formatBytes(limits.memoryBytes)}`;
      out.push({ file: join(dir, "memory.max"), value: String(limits.memoryBytes), what });
      out.push({ file: join(dir, "memory.swap.max"), value: "0", optional: true, what });
    }
    if (controllers.includes("cpu") && limits.cpus !== undefined) {
      const value = `${cpuQuotaUs(limits.cpus)} ${CPU_PERIOD_US}`;
      out.push({ file: join(dir, "cpu.max"), value, what: `--cpus ${limits.cpus}` });
    }
    if (controllers.includes("pids") && limits.pids !== undefined) {
      out.push({ file: join(dir, "pids.max"), value: String(limits.pids), what: `--pids ${limits.pids}` });
    }
    return out;
  },
  enableWrites(dir, controllers) {
    if (controllers.length === 0) return [];
    const value = controllers.map((c) => `+${c}`).join(" ");
    return [{ file: join(dir, "cgroup.subtree_control"), value, what: `enable ${controllers.join(", ")}` }];
  },
  procsFile: (dir) => join(dir, "cgroup.procs"),
  oomCounter: (dir) => ({ file: join(dir, "memory.events"), key: "oom_kill" }),
};

/** The cgroup and cgroup2 mounts of a mount table. */
export function cgroupMounts(table: readonly MountEntry[]): Hierarchy[] {
  const out: Hierarchy[] = [];
  for (const { fstype, mountpoint, root, superOptions } of table) {
    if (fstype === "cgroup2") out.push({ version: 2, mountpoint, root, controllers: [] });
    else if (fstype === "cgroup") out.push({ version: 1, mountpoint, root, controllers: superOptions });
  }
  return out;
}

/** /proc/self/cgroup: the caller's cgroup per v1 controller, and its v2 cgroup. */
export interface SelfCgroups {
  v1: Map<string, string>;
  v2: string | undefined;
}

export function parseProcCgroup(text: string): SelfCgroups {
  const v1 = new Map<string, string>();
  let v2: string | undefined;
  for (const line of text.split("\n")) {
    const m = /^(\d+):([^:]*):(.*)$/.exec(line);
    if (m === null) continue;
    const [, id, list = "", path = "/"] = m;
    if (id === "0" && list === "") v2 = path;
    else for (const c of list.split(",")) v1.set(c, path);
  }
  return { v1, v2 };
}

/** One directory to create: the run's cgroup in one hierarchy. */
export interface CgroupDirPlan {
  backend: CgroupBackend;
  hierarchy: Hierarchy;
  /** absolute path of the new cgroup */
  dir: string;
  controllers: Controller[];
  /** existing or to-be-made ancestors, from the hierarchy's mount point down to the parent */
  ancestors: string[];
}

export class CgroupPlanError extends Error {}

/**
 * Which hierarchy serves each controller `limits` needs, and the cgroup directories to make.
 * Throws CgroupPlanError when a limit has no controller on this host.
 */
export function planCgroupDirs(
  limits: Limits,
  hierarchies: readonly Hierarchy[],
  self: SelfCgroups,
  name: string,
  parent?: string,
): CgroupDirPlan[] {
  const wanted: [Controller, string][] = [];
  if (limits.memoryBytes !== undefined) wanted.push(["memory", "--memory"]);
  if (limits.cpus !== undefined) wanted.push(["cpu", "--cpus"]);
  if (limits.pids !== undefined) wanted.push(["pids", "--pids"]);
  const plans: CgroupDirPlan[] = [];
  for (const [controller, option] of wanted) {
    const hierarchy =
      hierarchies.find((h) => h.version === 2 && h.controllers.includes(controller)) ??
      hierarchies.find((h) => h.version === 1 && h.controllers.includes(controller));
    if (hierarchy === undefined) {
      throw new CgroupPlanError(
        `${option} needs the ${controller} cgroup controller, which neither a cgroup v2 nor a v1 hierarchy offers on this host`,
      );
    }
    const existing = plans.find((p) => p.hierarchy === hierarchy);
    if (existing !== undefined) {
      existing.controllers.push(controller);
      continue;
    }
    const rel = parent ?? defaultParent(hierarchy, self);
    const ancestors = [hierarchy.mountpoint];
    for (const part of rel.split("/").filter((p) => p.length > 0)) {
      ancestors.push(join(ancestors[ancestors.length - 1] as string, part));
    }
    plans.push({
      backend: hierarchy.version === 2 ? V2 : V1,
      hierarchy,
      dir: join(ancestors[ancestors.length - 1] as string, name),
      controllers: [controller],
      ancestors,
    });
  }
  return plans;
}

/** The caller's own cgroup relative to the mount's root on v1; the root on v2. */
function defaultParent(h: Hierarchy, self: SelfCgroups): string {
  if (h.version === 2) return "/";
  const own = h.controllers.map((c) => self.v1.get(c)).find((p) => p !== undefined);
  if (own === undefined) return "/";
  if (h.root === "/") return own;
  if (own === h.root) return "/";
  return own.startsWith(`${h.root}/`) ? own.slice(h.root.length) : "/";
}

/** The count under `key` in a flat-keyed cgroup file ("oom_kill 3"); 0 when absent. */
export function readKeyedCount(text: string, key: string): number {
  for (const line of text.split("\n")) {
    const [k, v] = line.trim().split(/\s+/);
    if (k === key && v !== undefined && /^\d+$/.test(v)) return Number(v);
  }
  return 0;
}
