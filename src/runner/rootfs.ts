/**
 * The directories of a run and the union that becomes its root.
 *
 *   $TMPDIR/unionfs-run-XXXXXX/     private to the run, removed at the end
 *     status     the helper's report (see native/unionfs-run.c), when this process waits for it
 *   with --driver overlay the run dir itself is the mount target that becomes "/"; as root and
 *   without --upper it holds nothing else: the upper is in memory (below)
 *     upper/ work/   the temporary writable layer of a rootless overlay run without --upper
 *   with --driver fuse:
 *     root/      the mount target that becomes "/" (the union is bound onto it only inside the
 *                run's mount namespace)
 *     upper/ work/   the temporary writable layer, without --upper
 *     merged/    where the unionfs daemon mounts the union on the host
 *
 * With --driver overlay nothing is mounted on the host at all: the helper mounts overlayfs in
 * its own mount namespace, so the mount dies with the run whatever happens. As root, a
 * temporary upper is a tmpfs the helper mounts there too (RootMount "tmpfs-overlay"): a run
 * then writes nothing to disk, where each directory made and removed costs (0.1 ms each on
 * this ext4 with online discard, and a run made and removed seven). A rootless run
 * keeps it on disk: a rootless overlay needs user.* xattrs on its upper for opaque
 * directories, which tmpfs has only since Linux 6.6. With --driver fuse
 * the daemon is a separate process (`unionfs mount`, never in this process: touching a FUSE
 * mount from the process that serves it deadlocks) and `unionfs umount` stops it afterwards.
 *
 * Invariant: the run dir is deleted only when nothing is mounted below it; a FUSE mount that
 * cannot be unmounted leaves the dir in place (and says so) rather than have rm descend into
 * the layers through it.
 */
import { accessSync, chmodSync, constants as fsc, mkdirSync, mkdtempSync, readdirSync } from "node:fs";
import { tmpdir } from "node:os";
import { join, resolve } from "node:path";
import { UserError } from "../errors.js";
import { defaultWorkDir } from "../format/default-work-dir.js";
import { escapeOverlayPath } from "../format/overlay-options.js";
import { mountpointsUnder, readMountTableSync } from "../sys/mountinfo.js";
import type { RootMount } from "./plan.js";
import { removeTree } from "./remove-tree.js";
import type { Driver } from "./run-spec.js";

const CLI = join(import.meta.dirname, "../cli/main.js");
const CLI_TIMEOUT_MS = 60_000;

export interface RootfsRequest {
  /** topmost first */
  lowers: readonly string[];
  upper?: string;
  driver: Driver;
  /** remove --upper and its work dir afterwards */
  removeUpper: boolean;
  /** no privileges: the run maps the caller to root in a user namespace */
  rootless: boolean;
}

export interface PreparedRootfs {
  /** the run's private directory (removed by cleanup) */
  runDir: string;
  /** the host directory the helper pivots into */
  rootDir: string;
  mount: RootMount;
  /** the writable layer's directory on the host (temporary or --upper); none when in memory */
  upper?: string;
  /**
   * The trees cleanup() removes: with --driver overlay, that is all it does, so the helper can
   * do it instead when the run is handed over to it.
   */
  removals: readonly string[];
  /** undoes everything; returns what could not be undone, as messages */
  cleanup(): Promise<string[]>;
}

export async function prepareRootfs(req: RootfsRequest): Promise<PreparedRootfs> {
  const lowers = req.lowers.map((l) => resolve(l));
  for (const lower of lowers) checkDirectory(lower, "lower layer");
  const runDir = mkdtempSync(join(tmpdir(), "unionfs-run-"));
  const removals: string[] = [runDir];
  let fuseMount: string | undefined;
  const cleanup = async (): Promise<string[]> => {
    const problems: string[] = [];
    if (fuseMount !== undefined) {
      const problem = await unmountFuse(fuseMount);
      if (problem !== null) problems.push(problem);
    }
    const stillMounted = mountpointsUnder(readMountTableSync(), runDir);
    for (const path of removals) {
      if (path === runDir && stillMounted.length > 0) {
        problems.push(`left ${runDir} in place: still mounted: ${stillMounted.join(", ")}`);
        continue;
      }
      const problem = removeTree(path);
      if (problem !== null) problems.push(problem);
    }
    return problems;
  };
  const { rootless } = req;
  try {
    if (req.driver === "overlay" && req.upper === undefined && !rootless) {
      const mount: RootMount = { kind: "tmpfs-overlay", lowers };
      return { runDir, rootDir: runDir, mount, removals, cleanup };
    }
    let upper: string;
    let work: string;
    if (req.upper === undefined) {
      upper = join(runDir, "upper");
      work = join(runDir, "work");
      mkdirSync(upper);
      mkdirSync(work, { mode: 0o700 });
      // The union's root directory takes its mode from the upper's: 0755 whatever the umask.
      chmodSync(upper, 0o755);
    } else {
      upper = resolve(req.upper);
      work = defaultWorkDir(upper);
      mkdirSync(upper, { recursive: true, mode: 0o755 });
      mkdirSync(work, { recursive: true, mode: 0o700 });
      if (req.removeUpper) removals.push(upper, work);
    }
    if (req.driver === "overlay") {
      // A temporary upper needs no sync when the overlay goes (0.6 ms of a run on ext4 here);
      // an --upper, even with --rm, is synced: a stale volatile work dir would refuse the next run.
      const mount: RootMount = { kind: "overlay", lowers, upper, work, volatile: req.upper === undefined };
      return { runDir, rootDir: runDir, upper, mount, removals, cleanup };
    }
    if (rootless) checkFuseAccess();
    const rootDir = join(runDir, "root");
    mkdirSync(rootDir, { mode: 0o755 });
    const merged = join(runDir, "merged");
    mkdirSync(merged);
    fuseMount = merged;
    await mountFuse(lowers, upper, work, merged);
    return { runDir, rootDir, upper, mount: { kind: "bind", source: merged }, removals, cleanup };
  } catch (e) {
    await cleanup();
    throw e;
  }
}

function checkDirectory(path: string, what: string): void {
  try {
    readdirSync(path);
  } catch (e) {
    throw new UserError(`run: ${what} ${path}: ${(e as Error).message.split(", ")[0]}`);
  }
}

/** An unprivileged FUSE mount needs /dev/fuse itself (fusermount only does the mount). */
function checkFuseAccess(): void {
  try {
    accessSync("/dev/fuse", fsc.R_OK | fsc.W_OK);
  } catch (e) {
    throw new UserError(
      `run: --driver fuse as an unprivileged user needs read-write access to /dev/fuse (${(e as Error).message.split(",")[0]}); ` +
        "use --driver overlay, or run as root",
    );
  }
}

/**
 * Runs the unionfs CLI. In a session of its own: a terminal's Ctrl-C must not kill a `mount`
 * half-way (its daemon would then mount after we gave up), we decide what to undo.
 * child_process is loaded here only: a run with --driver overlay does without it.
 */
async function cli(args: string[]): Promise<{ ok: boolean; stderr: string }> {
  const { spawn } = await import("node:child_process");
  return new Promise((done) => {
    const child = spawn(process.execPath, [CLI, ...args], { detached: true, stdio: ["ignore", "ignore", "pipe"] });
    let stderr = "";
    child.stderr?.on("data", (chunk: Buffer) => {
      stderr += chunk.toString("utf8");
    });
    const timer = setTimeout(() => child.kill("SIGKILL"), CLI_TIMEOUT_MS);
    child.on("error", (e) => {
      clearTimeout(timer);
      done({ ok: false, stderr: e.message });
    });
    child.on("close", (code) => {
      clearTimeout(timer);
      done({ ok: code === 0, stderr: stderr.trim() });
    });
  });
}

async function mountFuse(lowers: readonly string[], upper: string, work: string, mountpoint: string): Promise<void> {
  // the CLI reads its lower list as overlayfs reads lowerdir=
  const list = lowers.map(escapeOverlayPath).join(":");
  // --exit-with: should this process be SIGKILLed, the mount goes with it rather than stay
  const result = await cli(["mount", "--exit-with", String(process.pid), "-w", work, list, upper, mountpoint]);
  if (!result.ok) {
    const reason = result.stderr.replace(/^unionfs: /, "") || "unionfs mount failed";
    throw new UserError(`run: cannot mount the union with --driver fuse: ${reason}`);
  }
}

/** Unmounts (the daemon exits with it); a lazy detach if the plain unmount fails. */
async function unmountFuse(mountpoint: string): Promise<string | null> {
  if (!mountpointsUnder(readMountTableSync(), mountpoint).includes(mountpoint)) return null;
  const first = await cli(["umount", mountpoint]);
  if (first.ok) return null;
  const lazy = await cli(["umount", "--lazy", mountpoint]);
  if (lazy.ok) return null;
  return `cannot unmount ${mountpoint}: ${first.stderr || lazy.stderr}`;
}
