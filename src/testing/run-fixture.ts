/**
 * Helpers for `unionfs run` tests: the processes a run starts (found from the outside, by
 * parent links in /proc), their CPU time, and the cgroups a run made (found by walking the
 * mounted hierarchies, independently of the runner's own bookkeeping).
 */
import { execFileSync } from "node:child_process";
import { existsSync, readdirSync, readFileSync, rmdirSync, statSync } from "node:fs";
import { dirname, join } from "node:path";
import { fileURLToPath } from "node:url";
import { readMountTableSync } from "../sys/mountinfo.js";

const REPO = join(dirname(fileURLToPath(import.meta.url)), "../..");
export const HELPER = join(REPO, "native/build/unionfs-run");

/** Builds native/build/unionfs-run if it is missing or older than its source. */
export function ensureHelperBuilt(): void {
  execFileSync(process.execPath, [join(REPO, "tools/build-native.mjs")], { stdio: ["ignore", "ignore", "inherit"] });
  if (!existsSync(HELPER)) throw new Error(`${HELPER} could not be built (is gcc installed?)`);
}

interface ProcInfo {
  pid: number;
  ppid: number;
  /** user + system time in clock ticks */
  ticks: number;
}

function procInfo(pid: number): ProcInfo | null {
  try {
    const stat = readFileSync(`/proc/${pid}/stat`, "utf8");
    const fields = stat.slice(stat.lastIndexOf(")") + 2).split(" ");
    // fields[0] is field 3 (state): ppid is field 4, utime 14, stime 15
    return { pid, ppid: Number(fields[1]), ticks: Number(fields[11]) + Number(fields[12]) };
  } catch {
    return null;
  }
}

/** Every live descendant of `pid`, parents before children. */
export function descendants(pid: number): number[] {
  const all: ProcInfo[] = [];
  for (const name of readdirSync("/proc")) {
    if (!/^\d+$/.test(name)) continue;
    const info = procInfo(Number(name));
    if (info !== null) all.push(info);
  }
  const out: number[] = [];
  let frontier = [pid];
  while (frontier.length > 0) {
    const next = all.filter((p) => frontier.includes(p.ppid)).map((p) => p.pid);
    out.push(...next);
    frontier = next;
  }
  return out;
}

/** The pids of `pid` in each namespace, outermost first (the NSpid line). */
export function nsPids(pid: number): number[] {
  try {
    const line = readFileSync(`/proc/${pid}/status`, "utf8")
      .split("\n")
      .find((l) => l.startsWith("NSpid:"));
    return line === undefined ? [] : line.slice(6).trim().split(/\s+/).map(Number);
  } catch {
    return [];
  }
}

/** The host pid of the process that is `inner` in a run started by `runner` (a CLI process). */
export function runProcess(runner: number, inner: number): number | null {
  for (const pid of descendants(runner)) {
    const ns = nsPids(pid);
    if (ns.length >= 2 && ns[ns.length - 1] === inner) return pid;
  }
  return null;
}

let clockTicks: number | undefined;

/** CPU seconds (user + system) `pid` has used so far. */
export function cpuSeconds(pid: number): number {
  clockTicks ??= Number(execFileSync("getconf", ["CLK_TCK"], { encoding: "utf8" }).trim());
  const info = procInfo(pid);
  if (info === null) throw new Error(`process ${pid} is gone`);
  return info.ticks / clockTicks;
}

/** cgroup hierarchies mounted on this host (v1 and v2 alike). */
function hierarchyRoots(): string[] {
  return readMountTableSync()
    .filter((e) => e.fstype === "cgroup" || e.fstype === "cgroup2")
    .map((e) => e.mountpoint);
}

/** Directories named `name` anywhere in the cgroup hierarchies (a few levels deep). */
export function cgroupsNamed(name: string | RegExp, maxDepth = 6): string[] {
  const found: string[] = [];
  const walk = (dir: string, depth: number) => {
    let entries: string[];
    try {
      entries = readdirSync(dir);
    } catch {
      return;
    }
    for (const entry of entries) {
      const path = join(dir, entry);
      try {
        if (!statSync(path).isDirectory()) continue;
      } catch {
        continue;
      }
      if (typeof name === "string" ? entry === name : name.test(entry)) found.push(path);
      else if (depth < maxDepth) walk(path, depth + 1);
    }
  };
  for (const root of hierarchyRoots()) walk(root, 1);
  return found;
}

/** Kills what is left in the run cgroups called `name` and removes them (test cleanup). */
export async function sweepCgroups(name: string): Promise<string[]> {
  const swept = cgroupsNamed(name);
  for (const dir of swept) {
    for (const pid of readFileSync(join(dir, "cgroup.procs"), "utf8").split("\n").filter(Boolean)) {
      try {
        process.kill(Number(pid), "SIGKILL");
      } catch {
        // gone
      }
    }
    for (let i = 0; i < 100; i++) {
      try {
        rmdirSync(dir);
        break;
      } catch {
        await new Promise((r) => setTimeout(r, 20));
      }
    }
  }
  return swept;
}

/**
 * Removes run cgroups (`unionfs-<id>`) made since `sinceMs` that hold no process: what a run
 * killed before its own cleanup (a test timeout) leaves. Empty ones only, so a running command
 * is never touched; but a concurrent run between making its cgroup and joining it has an empty
 * one too, so call this only after a test failed.
 */
export function sweepEmptyRunCgroups(sinceMs: number): string[] {
  const swept: string[] = [];
  for (const dir of cgroupsNamed(/^unionfs-[0-9a-f]{12}$/)) {
    try {
      if (statSync(dir).ctimeMs < sinceMs) continue;
      if (readFileSync(join(dir, "cgroup.procs"), "utf8").trim() !== "") continue;
      rmdirSync(dir);
      swept.push(dir);
    } catch {
      // gone meanwhile, or busy: not ours to force
    }
  }
  return swept;
}
