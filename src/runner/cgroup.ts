/**
 * Creating, reading and removing a run's cgroup (the effects; cgroup-layout.ts decides what).
 *
 * Invariants:
 * - every limit asked for is written, or the run fails before anything starts: a write that
 *   fails removes what was created and throws a UserError naming the limit;
 * - `remove` takes away every directory this module created, children first, and is safe to
 *   call twice; the payload has exited by then, so an EBUSY is only the kernel catching up and
 *   is retried for a while.
 */
import { closeSync, constants as fsc, mkdirSync, openSync, readFileSync, rmdirSync, writeSync } from "node:fs";
import { hasCode, UserError } from "../errors.js";
import { readMountTableSync } from "../sys/mountinfo.js";
import {
  type CgroupDirPlan,
  CgroupPlanError,
  type CgroupWrite,
  cgroupMounts,
  parseProcCgroup,
  planCgroupDirs,
  readKeyedCount,
} from "./cgroup-layout.js";
import type { Limits } from "./limits.js";

export interface RunCgroup {
  /** cgroup.procs files the payload joins before it execs, one per hierarchy */
  readonly procsFiles: string[];
  /** the new cgroup directories */
  readonly dirs: string[];
  /** things worth telling the user (a limit only partly enforceable on this host) */
  readonly notes: string[];
  /** OOM kills recorded in the memory cgroup so far (0 without a memory limit) */
  oomKills(): number;
  remove(): Promise<void>;
}

export interface CgroupOptions {
  /** the new cgroup's name in every hierarchy */
  name: string;
  /** --cgroup-parent */
  parent?: string;
}

const RMDIR_RETRY_MS = 2_000;

export async function createCgroup(limits: Limits, opts: CgroupOptions): Promise<RunCgroup> {
  const hierarchies = cgroupMounts(readMountTableSync());
  for (const h of hierarchies) {
    if (h.version === 2) h.controllers = readWords(`${h.mountpoint}/cgroup.controllers`);
  }
  const self = parseProcCgroup(readFileSync("/proc/self/cgroup", "utf8"));
  let plans: CgroupDirPlan[];
  try {
    plans = planCgroupDirs(limits, hierarchies, self, opts.name, opts.parent);
  } catch (e) {
    if (e instanceof CgroupPlanError) throw new UserError(`run: ${e.message}`);
    throw e;
  }
  const created: Created[] = [];
  const notes: string[] = [];
  const cgroup: RunCgroup = {
    procsFiles: plans.map((p) => p.backend.procsFile(p.dir)),
    dirs: plans.map((p) => p.dir),
    notes,
    oomKills: () => {
      const memory = plans.find((p) => p.controllers.includes("memory"));
      if (memory === undefined) return 0;
      const counter = memory.backend.oomCounter(memory.dir);
      try {
        return readKeyedCount(readFileSync(counter.file, "utf8"), counter.key);
      } catch {
        return 0;
      }
    },
    remove: () => removeDirs(created),
  };
  try {
    for (const plan of plans) {
      for (const dir of plan.ancestors.slice(1)) {
        if (mkdirOwn(dir, limits)) created.push({ dir, ancestor: true });
      }
      for (const dir of plan.ancestors) {
        const enabled = plan.backend.version === 2 ? readWords(`${dir}/cgroup.subtree_control`) : [];
        const missing = plan.controllers.filter((c) => !enabled.includes(c));
        for (const w of plan.backend.enableWrites(dir, missing)) apply(w);
      }
      mkdirOwn(plan.dir, limits, true);
      created.push({ dir: plan.dir, ancestor: false });
      for (const w of plan.backend.limitWrites(plan.dir, limits, plan.controllers)) {
        if (!apply(w) && w.file.includes("swap") && swapActive()) {
          notes.push(`${w.what}: this host does not account swap in cgroups, so swap use is not limited`);
        }
      }
    }
  } catch (e) {
    await removeDirs(created).catch(() => {});
    throw e;
  }
  return cgroup;
}

/** mkdir for a cgroup; false if it already existed (only allowed for ancestors). */
function mkdirOwn(dir: string, limits: Limits, mustBeNew = false): boolean {
  try {
    mkdirSync(dir);
    return true;
  } catch (e) {
    if (hasCode(e, "EEXIST") && !mustBeNew) return false;
    if (hasCode(e, "EACCES", "EPERM", "EROFS")) {
      throw new UserError(
        `run: ${describeLimits(limits)} needs a cgroup, and ${dir} cannot be created (${(e as Error).message.split(",")[0]}); ` +
          "run as root, or give a delegated cgroup with --cgroup-parent",
      );
    }
    throw new UserError(`run: cannot create cgroup ${dir}: ${(e as Error).message}`);
  }
}

/** Writes one cgroup file; false when an optional file does not exist. */
function apply(w: CgroupWrite): boolean {
  let fd: number;
  try {
    fd = openSync(w.file, fsc.O_WRONLY);
  } catch (e) {
    if (w.optional && hasCode(e, "ENOENT")) return false;
    throw new UserError(`run: cannot apply ${w.what}: ${(e as Error).message}`);
  }
  try {
    writeSync(fd, w.value);
  } catch (e) {
    throw new UserError(`run: cannot apply ${w.what}: writing '${w.value}' to ${w.file}: ${(e as Error).message}`);
  } finally {
    closeSync(fd);
  }
  return true;
}

interface Created {
  dir: string;
  /** a parent made for --cgroup-parent: other runs may use it, so it goes only if empty */
  ancestor: boolean;
}

async function removeDirs(created: Created[]): Promise<void> {
  const errors: string[] = [];
  while (created.length > 0) {
    const { dir, ancestor } = created.pop() as Created;
    const deadline = Date.now() + RMDIR_RETRY_MS;
    for (;;) {
      try {
        rmdirSync(dir);
        break;
      } catch (e) {
        if (hasCode(e, "ENOENT") || (ancestor && hasCode(e, "EBUSY", "ENOTEMPTY"))) break;
        // EBUSY: the exited tasks are still being released
        if (hasCode(e, "EBUSY") && Date.now() < deadline) {
          await new Promise((r) => setTimeout(r, 20));
          continue;
        }
        errors.push((e as Error).message);
        break;
      }
    }
  }
  if (errors.length > 0) throw new Error(`cannot remove cgroup: ${errors.join("; ")}`);
}

function readWords(file: string): string[] {
  try {
    return readFileSync(file, "utf8")
      .split(/\s+/)
      .filter((w) => w.length > 0);
  } catch {
    return [];
  }
}

function swapActive(): boolean {
  try {
    return readFileSync("/proc/swaps", "utf8").trim().split("\n").length > 1;
  } catch {
    return false;
  }
}

function describeLimits(limits: Limits): string {
  const parts: string[] = [];
  if (limits.memoryBytes !== undefined) parts.push("--memory");
  if (limits.cpus !== undefined) parts.push("--cpus");
  if (limits.pids !== undefined) parts.push("--pids");
  return parts.join(", ");
}
