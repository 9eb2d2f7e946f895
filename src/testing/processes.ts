/**
 * Processes a test may leave behind: those whose command line or working directory is under
 * its dir (a daemon started with the dir's layers, a shell cd'ed into a mount), found through
 * /proc and ended with SIGTERM, then SIGKILL.
 */
import { readdirSync, readFileSync, realpathSync } from "node:fs";
import { isAlive } from "../sys/process-watch.js";

/** Polls `check` every 20 ms until it returns true; false if `timeoutMs` passes first. */
export async function waitUntil(check: () => boolean, timeoutMs = 5_000): Promise<boolean> {
  const deadline = Date.now() + timeoutMs;
  for (;;) {
    if (check()) return true;
    if (Date.now() >= deadline) return false;
    await new Promise((r) => setTimeout(r, 20));
  }
}

/** Live processes (other than this one) whose command line or working directory is under `dir`. */
export function processesUsing(dir: string): number[] {
  const pids: number[] = [];
  for (const name of readdirSync("/proc")) {
    const pid = Number(name);
    if (!Number.isInteger(pid) || pid === process.pid) continue;
    try {
      const args = readFileSync(`/proc/${pid}/cmdline`, "utf8").split("\0");
      let cwd = "";
      try {
        cwd = realpathSync(`/proc/${pid}/cwd`);
      } catch {
        // cwd of another mount namespace or a racing exit: the command line still counts
      }
      // includes, not startsWith: `-o lowerdir=DIR/l1` and `sh -c SCRIPT` name it mid-argument
      const under = (p: string) => p === dir || p.includes(`${dir}/`);
      if ((args.some(under) || under(cwd)) && isAlive(pid)) pids.push(pid);
    } catch {
      // exited while we looked
    }
  }
  return pids;
}

/** SIGTERM, then SIGKILL after a grace period, to every process using `dir`; returns them. */
export async function killProcessesUsing(dir: string): Promise<number[]> {
  const pids = processesUsing(dir);
  for (const pid of pids) signal(pid, "SIGTERM");
  if (!(await waitUntil(() => pids.every((p) => !isAlive(p)), 2_000))) {
    for (const pid of pids) signal(pid, "SIGKILL");
    await waitUntil(() => pids.every((p) => !isAlive(p)), 2_000);
  }
  return pids;
}

function signal(pid: number, sig: NodeJS.Signals): void {
  try {
    process.kill(pid, sig);
  } catch {
    // already gone
  }
}
