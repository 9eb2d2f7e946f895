/**
 * The one per-test scratch directory, for mount tests and CLI tests alike:
 * `/tmp/unionfs-test-XXXXXX` with whatever layer, work and mount directories the test asks for,
 * a runtime dir of its own for daemon records (`env` points the CLI at it), and a cleanup that
 * always runs.
 *
 * Invariants of the cleanup (a leaked mount outlives the run and keeps its layers busy, so the
 * cleanup is defensive):
 * - registered cleanups run last-in first-out, each even if an earlier one threw;
 * - then anything still mounted under the scratch root (per /proc/self/mountinfo) is unmounted,
 *   latest first, lazily (MNT_DETACH) if a plain unmount fails, which is an error unless the
 *   scratch was made to clean mounts up (CLI tests);
 * - then unionfs daemons still recorded in the scratch's runtime dir are killed (they are ours:
 *   the runtime dir is private to this test), and any other process still using the dir (its
 *   command line or working directory under it), after which mounts are swept once more;
 * - the tree is removed only when nothing is mounted under it any more, so a stuck mount can
 *   never make `rm -r` descend into a layer through it;
 * - errors are collected and thrown once at the end, after all of the above was tried.
 */
import { execFileSync } from "node:child_process";
import { chmodSync, mkdirSync, mkdtempSync, readdirSync, readFileSync, realpathSync } from "node:fs";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { afterEach, beforeEach } from "vitest";
import { MNT_DETACH, mount, umount2 } from "../sys/mount.js";
import { mountpointsUnder, readMountTableSync } from "../sys/mountinfo.js";
import { isAlive } from "../sys/process-watch.js";
import { killProcessesUsing, processesUsing } from "./processes.js";

export type Cleanup = () => void | Promise<void>;

export class Scratch {
  readonly root: string;
  /** private UNIONFS_RUNTIME_DIR for daemons started by this test */
  readonly runtimeDir: string;
  private readonly cleanups: Cleanup[] = [];

  /**
   * @param cleansMounts the cleanup's sweep is how the test's mounts go (CLI tests leave what
   *   the command under test mounted): a mount it finds is no error, only one it cannot remove
   */
  constructor(
    prefix = "unionfs-test-",
    private readonly cleansMounts = false,
  ) {
    this.root = realpathSync(mkdtempSync(join(tmpdir(), prefix)));
    chmodSync(this.root, 0o755);
    this.runtimeDir = join(this.root, ".run");
  }

  path(...parts: string[]): string {
    return join(this.root, ...parts);
  }

  /** Environment for CLI runs that keeps daemon records inside this scratch. */
  get env(): Record<string, string> {
    return { UNIONFS_RUNTIME_DIR: this.runtimeDir };
  }

  /** The pid a daemon recorded for `mountpoint` (a resolved path), or null. */
  daemonPid(mountpoint: string): number | null {
    return recordedDaemons(this.runtimeDir).find((r) => r.mountpoint === mountpoint)?.pid ?? null;
  }

  /** What a finished command must not leave: mounts under the dir, live processes using it. */
  leftovers(): { mounts: string[]; processes: number[] } {
    return { mounts: mountsUnder(this.root), processes: processesUsing(this.root) };
  }

  /** Creates `root/rel` (and parents) with mode 0755 exactly, whatever the umask. */
  mkdir(rel: string): string {
    const path = this.path(rel);
    mkdirSync(path, { recursive: true });
    chmodSync(path, 0o755);
    return path;
  }

  /**
   * Mounts a tmpfs on `root/rel` (created if needed), unmounted at cleanup. For big fixtures:
   * creating a regular file on some ext4 set-ups costs half a millisecond, on tmpfs microseconds.
   */
  mountTmpfs(rel: string, size = "256m", extra: readonly string[] = []): string {
    const path = this.mkdir(rel);
    mount("tmpfs", path, "tmpfs", 0, [`size=${size}`, "mode=0755", ...extra].join(","));
    this.onCleanup(() => umount2(path, MNT_DETACH));
    return path;
  }

  /** Runs `fn` at cleanup, before the sweep; cleanups run in reverse order of registration. */
  onCleanup(fn: Cleanup): void {
    this.cleanups.push(fn);
  }

  async cleanup(): Promise<void> {
    const errors: unknown[] = [];
    for (let fn = this.cleanups.pop(); fn !== undefined; fn = this.cleanups.pop()) {
      try {
        await fn();
      } catch (e) {
        errors.push(e);
      }
    }
    const swept = sweepMounts(this.root, errors);
    if (swept.length > 0 && !this.cleansMounts) {
      errors.push(new Error(`mounts left behind and detached: ${swept.join(", ")}`));
    }
    await killRecordedDaemons(this.runtimeDir, errors);
    await killProcessesUsing(this.root);
    sweepMounts(this.root, errors);
    const still = mountsUnder(this.root);
    if (still.length === 0) removeTree(this.root, errors);
    else errors.push(new Error(`not removing ${this.root}: still mounted: ${still.join(", ")}`));
    if (errors.length === 1) throw errors[0];
    if (errors.length > 1) throw new AggregateError(errors, `cleanup of ${this.root} failed`);
  }
}

/**
 * rm -r that copes with trees deeper than PATH_MAX (GNU rm walks with openat; Node's rmSync
 * builds absolute paths) and never crosses into another filesystem.
 */
function removeTree(root: string, errors: unknown[]): void {
  try {
    execFileSync("rm", ["-rf", "--one-file-system", "--", root], { stdio: ["ignore", "ignore", "pipe"] });
  } catch (e) {
    errors.push(new Error(`cannot remove ${root}: ${String((e as { stderr?: unknown }).stderr ?? e)}`));
  }
}

/** Mount points at or below `root`, in mount order (a later mount may sit on an earlier one). */
export function mountsUnder(root: string): string[] {
  return mountpointsUnder(readMountTableSync(), root);
}

/** Unmounts everything below `root`, topmost mounts first; returns what it had to unmount. */
function sweepMounts(root: string, errors: unknown[]): string[] {
  const swept: string[] = [];
  for (let round = 0; round < 8; round++) {
    const mounts = mountsUnder(root);
    if (mounts.length === 0) break;
    for (const target of mounts.reverse()) {
      swept.push(target);
      try {
        umount2(target, 0);
      } catch {
        try {
          umount2(target, MNT_DETACH);
        } catch (e) {
          if (round === 7) errors.push(e);
        }
      }
    }
  }
  return [...new Set(swept)];
}

/** How long a daemon may take to exit once its mount is gone (a loaded machine is slow). */
const DAEMON_EXIT_GRACE_MS = 2_000;

/** The daemon records in a runtime dir; one being replaced right now is skipped. */
function recordedDaemons(runtimeDir: string): { pid: number; mountpoint: string }[] {
  let names: string[];
  try {
    names = readdirSync(join(runtimeDir, "mounts"));
  } catch {
    return [];
  }
  const records: { pid: number; mountpoint: string }[] = [];
  for (const name of names.filter((n) => n.endsWith(".json"))) {
    try {
      const r = JSON.parse(readFileSync(join(runtimeDir, "mounts", name), "utf8")) as {
        pid?: unknown;
        mountpoint?: unknown;
      };
      if (typeof r.pid === "number" && typeof r.mountpoint === "string")
        records.push({ pid: r.pid, mountpoint: r.mountpoint });
    } catch {
      // a record being replaced
    }
  }
  return records;
}

/** SIGKILLs daemons whose pid records are still in this test's runtime dir, after a grace. */
async function killRecordedDaemons(runtimeDir: string, errors: unknown[]): Promise<void> {
  const pids = recordedDaemons(runtimeDir).map((r) => r.pid);
  const deadline = Date.now() + DAEMON_EXIT_GRACE_MS;
  while (pids.some(isAlive) && Date.now() < deadline) await new Promise((r) => setTimeout(r, 20));
  for (const pid of pids.filter(isAlive)) {
    process.kill(pid, "SIGKILL");
    errors.push(new Error(`daemon ${pid} was still running ${DAEMON_EXIT_GRACE_MS} ms after its unmount; killed it`));
  }
}

/**
 * Registers beforeEach/afterEach in the calling describe block: a fresh Scratch per test,
 * cleaned up after it whether it passed or threw. Returns an accessor for the current one.
 */
export function useScratch(prefix?: string): () => Scratch {
  let current: Scratch | undefined;
  beforeEach(() => {
    current = new Scratch(prefix);
  });
  afterEach(async () => {
    const s = current;
    current = undefined;
    await s?.cleanup();
  });
  return () => {
    if (current === undefined) throw new Error("useScratch(): no test is running");
    return current;
  };
}
