/**
 * Executing a run: RunSpec → (image lookup) → the cgroup → the union → the plan → the native
 * helper → the exit status → cleanup. The CLI only parses, forwards signals and prints.
 *
 * Invariants:
 * - everything made for the run (temporary upper, FUSE mount, cgroup) is undone on every path
 *   out of `done`: set-up failure, a signal before the command started, any exit of the
 *   command, a SIGKILLed command; what cannot be undone is reported in `notes`;
 * - the status is the command's: its exit code, 128+N when signal N killed it, 137 when it
 *   failed after the memory cgroup OOM-killed something; 125 when the run could not be set
 *   up, 126/127 when the command could not be executed (docker's and the shell's numbers);
 * - signals given to `signal()` reach the command (through the helper, which puts it in a
 *   session of its own so a terminal's signals are not delivered twice, and kills it at the
 *   third INT/TERM/HUP/QUIT, for commands that ignore signals as PID 1 without --init).
 *
 * With `handover` (the `unionfs run` command), a run that needs nothing of this process once
 * the helper is started (--driver overlay, no cgroup) hands it over: the helper reports and
 * cleans up itself, and this process becomes native/build/unionfs-wait, which only passes
 * signals on and exits with the status. Node's teardown then happens while the helper sets the
 * run up, and its wake-up, cleanup and exit after the run are gone (see bench/RUN-STARTUP.md).
 */
import { accessSync, constants as fsc, readFileSync } from "node:fs";
import { constants as osc } from "node:os";
import { join } from "node:path";
import { UserError } from "../errors.js";
import { isHostAdmin } from "../sys/privilege.js";
import type { RunCgroup } from "./cgroup.js";
import { canHandOver, type HelperSpawner, handOverHelper, runHelperProcess } from "./helper-process.js";
import { formatBytes, hasLimits } from "./limits.js";
import { buildEnv, type HelperRole, helperArgs, PlanError, planRun } from "./plan.js";
import { type PreparedRootfs, prepareRootfs } from "./rootfs.js";
import type { RunSpec } from "./run-spec.js";

export const HELPER = join(import.meta.dirname, "../../native/build/unionfs-run");
/** what this process becomes when it hands the run over to the helper */
export const WAITER = join(import.meta.dirname, "../../native/build/unionfs-wait");

/** Set-up failed (docker's 125). */
export const EXIT_SETUP = 125;
const EXIT_OOM = 137;
const TERMINATING = new Set<NodeJS.Signals>(["SIGINT", "SIGTERM", "SIGHUP", "SIGQUIT"]);

export interface RunOutcome {
  /** the status `unionfs run` exits with */
  code: number;
  /** why the run itself failed (set-up, exec), one line; absent when the command ran */
  error?: string;
  /** things to tell the user: an OOM kill, a limit only partly enforced, cleanup trouble */
  notes: string[];
}

export interface RunHandle {
  /** forwards a signal to the command (or, before it started, abandons the run) */
  signal(sig: NodeJS.Signals): void;
  readonly done: Promise<RunOutcome>;
}

export interface RunOptions {
  /** the environment -e K (no value) reads from; default process.env */
  hostEnv?: Readonly<Record<string, string | undefined>>;
  /** the native helper; default native/build/unionfs-run */
  helper?: string;
  /** how to start it; default posix_spawn when its addon is built (see helper-process.ts) */
  spawner?: HelperSpawner;
  /**
   * This process is `unionfs run` and may hand the run over to the helper and become its
   * waiter (exec) when nothing is left for it to do afterwards; `done` then never settles.
   * Never in a process with other work.
   */
  handover?: boolean;
}

class Aborted extends Error {
  constructor(readonly sig: NodeJS.Signals) {
    super(`interrupted by ${sig}`);
  }
}

export function startRun(spec: RunSpec, opts: RunOptions = {}): RunHandle {
  let helperPid: number | undefined;
  let aborted: NodeJS.Signals | undefined;
  const checkAborted = () => {
    if (aborted !== undefined) throw new Aborted(aborted);
  };
  const signal = (sig: NodeJS.Signals) => {
    if (helperPid === undefined) {
      if (TERMINATING.has(sig)) aborted ??= sig;
      return;
    }
    try {
      process.kill(helperPid, sig);
    } catch {
      // the helper is already gone; its exit is on its way
    }
  };
  const done = execute(spec, opts, checkAborted, (pid) => {
    helperPid = pid;
  });
  return { signal, done };
}

async function execute(
  spec: RunSpec,
  opts: RunOptions,
  checkAborted: () => void,
  started: (pid: number) => void,
): Promise<RunOutcome> {
  const helper = opts.helper ?? HELPER;
  try {
    accessSync(helper, fsc.X_OK);
  } catch {
    throw new UserError(`run: the native helper ${helper} is missing: run 'node tools/build-native.mjs' (needs gcc)`);
  }
  // without CAP_SYS_ADMIN over the host: a user namespace, userxattr, a delegated cgroup
  const rootless = !isHostAdmin();
  const id = runId();
  const notes: string[] = [];
  let rootfs: PreparedRootfs | undefined;
  let cgroup: RunCgroup | undefined;
  try {
    const { lowers, command, env, cwd, user } = await resolveSource(spec, id, opts.hostEnv ?? process.env);
    checkAborted();
    // The cgroup first: a limit this host cannot apply fails the run before anything slow.
    if (hasLimits(spec.limits)) {
      if (rootless && spec.cgroupParent === undefined) {
        throw new UserError(
          "run: --memory, --cpus and --pids need a cgroup, which an unprivileged user may only create in a " +
            "delegated subtree: run as root, or name one you own with --cgroup-parent",
        );
      }
      const { createCgroup } = await import("./cgroup.js");
      cgroup = await createCgroup(spec.limits, { name: `unionfs-${id}`, parent: spec.cgroupParent });
      notes.push(...cgroup.notes);
      checkAborted();
    }
    rootfs = await prepareRootfs({
      lowers,
      upper: spec.upper,
      driver: spec.driver,
      removeUpper: spec.rm,
      rootless,
    });
    const handover = opts.handover === true && cgroup === undefined && rootfs.mount.kind !== "bind" && canHandOver();
    const role: HelperRole = handover
      ? { kind: "handover", remove: rootfs.removals }
      : { kind: "child", statusFile: join(rootfs.runDir, "status") };
    const plan = planRun({
      rootDir: rootfs.rootDir,
      rootfs: rootfs.mount,
      rootless,
      net: spec.net,
      hostname: spec.hostname ?? id,
      env,
      cwd,
      user,
      init: spec.init,
      cgroupProcs: cgroup?.procsFiles ?? [],
      command,
      role,
      errorHint: { prefix: OVERLAY_MOUNT_FAILED, text: overlayMountHint(rootfs.upper) },
    });
    // With a handover, a signal from here to the exec is lost (Node's handler would run on a
    // later tick); the next one reaches the command.
    checkAborted();
    const exit =
      role.kind === "handover"
        ? // back here only without the waiter program: the helper still reports and cleans up
          await handOverHelper(helper, helperArgs(plan), WAITER, started)
        : await runHelperProcess(helper, helperArgs(plan), started, opts.spawner);
    const status = helperStatus(readStatusFile(join(rootfs.runDir, "status")), exit.code, exit.signal);
    const outcome: RunOutcome = { code: status.code, notes };
    if (status.error !== undefined) outcome.error = status.error;
    const kills = cgroup?.oomKills() ?? 0;
    if (kills > 0) {
      const limit = spec.limits.memoryBytes === undefined ? "" : ` of ${formatBytes(spec.limits.memoryBytes)}`;
      notes.push(`the memory limit${limit} was reached: the kernel killed ${kills} process(es) (OOM)`);
      if (outcome.code !== 0) outcome.code = EXIT_OOM;
    }
    return outcome;
  } catch (e) {
    if (e instanceof Aborted) return { code: 128 + (osc.signals[e.sig] ?? 0), notes };
    if (e instanceof PlanError) throw new UserError(`run: ${e.message}`);
    throw e;
  } finally {
    if (cgroup !== undefined) {
      await cgroup.remove().catch((e: unknown) => notes.push((e as Error).message));
    }
    if (rootfs !== undefined) notes.push(...(await rootfs.cleanup()));
  }
}

/** The one set-up failure whose cause the kernel's errno does not tell, and the hint for it. */
const OVERLAY_MOUNT_FAILED = "mount overlay on /:";

function overlayMountHint(upper: string | undefined): string {
  if (upper === undefined) return "the kernel log says why";
  return (
    `the kernel log says why; common causes: the upper ${upper} is on a file system ` +
    "overlayfs cannot write to, such as overlayfs itself: set TMPDIR or --upper elsewhere, or use --driver fuse"
  );
}

interface ResolvedSource {
  lowers: string[];
  command: string[];
  env: string[];
  cwd?: string;
  user?: string;
}

async function resolveSource(
  spec: RunSpec,
  id: string,
  hostEnv: Readonly<Record<string, string | undefined>>,
): Promise<ResolvedSource> {
  const hostname = spec.hostname ?? id;
  if (spec.source.kind === "lowers") {
    const out: ResolvedSource = {
      lowers: spec.source.lowers,
      command: spec.command,
      env: buildEnv(hostname, [], spec.env, hostEnv),
    };
    if (spec.cwd !== undefined) out.cwd = spec.cwd;
    if (spec.user !== undefined) out.user = spec.user;
    return out;
  }
  const { openImage, imageCommand } = await import("./image-source.js");
  const image = await openImage(spec.source.image, spec.source.store);
  const out: ResolvedSource = {
    lowers: image.lowers,
    command: imageCommand(image.defaults, spec.command),
    env: buildEnv(hostname, image.defaults.env, spec.env, hostEnv),
  };
  const cwd = spec.cwd ?? image.defaults.workingDir;
  const user = spec.user ?? image.defaults.user;
  if (cwd !== undefined) out.cwd = cwd;
  if (user !== undefined) out.user = user;
  return out;
}

interface HelperStatus {
  code: number;
  error?: string;
}

/** What the helper wrote to its status file; nothing when it was killed before it could open it. */
function readStatusFile(path: string): string {
  try {
    return readFileSync(path, "utf8");
  } catch {
    return "";
  }
}

/** The status from the helper's report lines, or from how it exited when it could not say. */
export function helperStatus(report: string, code: number | null, sig: NodeJS.Signals | null): HelperStatus {
  let status: HelperStatus | undefined;
  for (const line of report.split("\n")) {
    const m = /^(error|exit|signal) (\d+)(?: (.*))?$/.exec(line);
    if (m === null) continue;
    const n = Number(m[2]);
    if (m[1] === "error") status = { code: n, error: m[3] ?? "the run failed" };
    else if (status?.error === undefined) status = { code: m[1] === "signal" ? 128 + n : n };
  }
  if (status !== undefined) return status;
  if (sig !== null) return { code: 128 + (osc.signals[sig] ?? 0) };
  return { code: code ?? EXIT_SETUP };
}

function runId(): string {
  let id = "";
  while (id.length < 12) id += Math.floor(Math.random() * 0x1_0000_0000).toString(16);
  return id.slice(0, 12);
}
