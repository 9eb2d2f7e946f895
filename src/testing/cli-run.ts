/**
 * Running the built CLI (dist/cli/main.js) as a child process, and a temp dir per test that is
 * handed back clean: nothing mounted under it, no process using it, then removed.
 *
 * Invariants: a command is always run with a timeout (a hung daemon must not hang the suite);
 * cleanup unmounts before it deletes and refuses to delete while anything is still mounted
 * under the dir (rm -rf through a live union would reach into its layers).
 *
 * Environments are built by wrapping the command, outermost first:
 *   unshare -m (private mount namespace; setup commands run there as root)
 *   setpriv --reuid --regid --clear-groups (an unprivileged caller)
 *   the command itself
 */
import { type ChildProcess, execFile, spawn } from "node:child_process";
import { existsSync, mkdirSync, mkdtempSync, readdirSync, readFileSync, realpathSync, rmSync } from "node:fs";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { fileURLToPath } from "node:url";
import { mount } from "../sys/mount.js";
import { type MountEntry, readMountTableSync } from "../sys/mountinfo.js";
import { isAlive } from "../sys/process-watch.js";
import type { Place } from "./fs-layout.js";

export const CLI_MAIN = fileURLToPath(new URL("../../dist/cli/main.js", import.meta.url));
/** The installed command (package.json "bin"): a launcher that runs `run` from its own bundle. */
export const CLI_BIN = fileURLToPath(new URL("../../dist/cli/unionfs.cjs", import.meta.url));

export interface RunOptions {
  /** set on top of this process's environment; `undefined` removes a variable */
  env?: Record<string, string | undefined>;
  /** run as this uid/gid with no supplementary groups */
  user?: { uid: number; gid: number };
  /** shell commands run as root in a fresh private mount namespace before the command */
  namespaceSetup?: readonly string[];
  cwd?: string;
  /** the child is killed (SIGKILL) after this long; default 15 s */
  timeoutMs?: number;
}

export interface RunResult {
  /** exit code, or null when the child was killed by a signal */
  code: number | null;
  signal: NodeJS.Signals | null;
  stdout: string;
  stderr: string;
  /** stderr split into lines, without the empty one after the last newline */
  stderrLines: string[];
}

export interface Running {
  child: ChildProcess;
  /** settles when the child has exited and its stdout/stderr are closed */
  result: Promise<RunResult>;
}

const DEFAULT_TIMEOUT_MS = 15_000;

/** Absolute path of a program on this process's PATH, so a test may give the child a bare PATH. */
export function findProgram(name: string): string | null {
  for (const dir of (process.env.PATH ?? "").split(":")) {
    if (dir.length > 0 && existsSync(join(dir, name))) return join(dir, name);
  }
  return null;
}

const UNSHARE = findProgram("unshare") ?? "unshare";
const SETPRIV = findProgram("setpriv") ?? "setpriv";

/** The argv (program first) that runs `file args` in the environment `opts` asks for. */
export function wrapCommand(file: string, args: readonly string[], opts: RunOptions = {}): string[] {
  let argv = [file, ...args];
  if (opts.user !== undefined) {
    const { uid, gid } = opts.user;
    argv = [SETPRIV, `--reuid=${uid}`, `--regid=${gid}`, "--clear-groups", "--", ...argv];
  }
  if (opts.namespaceSetup !== undefined) {
    // set -e: a setup step that fails must not leave the command running in the wrong world.
    // The steps run with this process's PATH: `env.PATH` is meant for the command only.
    const setup = `(\nPATH=${shellQuote(process.env.PATH ?? "/usr/sbin:/usr/bin:/sbin:/bin")}\n${opts.namespaceSetup.join("\n")}\n)`;
    const script = `set -e\n${setup}\nexec "$@"`;
    argv = [UNSHARE, "--mount", "--propagation", "private", "/bin/sh", "-c", script, "sh", ...argv];
  }
  return argv;
}

export function shellQuote(text: string): string {
  return `'${text.replaceAll("'", "'\\''")}'`;
}

function childEnv(extra: RunOptions["env"]): NodeJS.ProcessEnv {
  const env = { ...process.env };
  for (const [key, value] of Object.entries(extra ?? {})) {
    if (value === undefined) delete env[key];
    else env[key] = value;
  }
  return env;
}

export function startCommand(file: string, args: readonly string[], opts: RunOptions = {}): Running {
  const [program, ...rest] = wrapCommand(file, args, opts);
  const child = spawn(program as string, rest, {
    cwd: opts.cwd,
    env: childEnv(opts.env),
    stdio: ["ignore", "pipe", "pipe"],
  });
  let stdout = "";
  let stderr = "";
  child.stdout?.on("data", (chunk: Buffer) => {
    stdout += chunk.toString("utf8");
  });
  child.stderr?.on("data", (chunk: Buffer) => {
    stderr += chunk.toString("utf8");
  });
  const timer = setTimeout(() => child.kill("SIGKILL"), opts.timeoutMs ?? DEFAULT_TIMEOUT_MS);
  const result = new Promise<RunResult>((resolve, reject) => {
    child.on("error", (e) => {
      clearTimeout(timer);
      reject(e);
    });
    // "close", not "exit": a daemon that kept our pipes open would show up as a hang here.
    child.on("close", (code, signal) => {
      clearTimeout(timer);
      resolve({ code, signal, stdout, stderr, stderrLines: splitLines(stderr) });
    });
  });
  return { child, result };
}

export function runCommand(file: string, args: readonly string[], opts: RunOptions = {}): Promise<RunResult> {
  return startCommand(file, args, opts).result;
}

/** Runs `node dist/cli/main.js ...args`. */
export function runCli(args: readonly string[], opts: RunOptions = {}): Promise<RunResult> {
  return runCommand(process.execPath, [CLI_MAIN, ...args], opts);
}

/** Starts the CLI without waiting for it (foreground mounts). */
export function startCli(args: readonly string[], opts: RunOptions = {}): Running {
  return startCommand(process.execPath, [CLI_MAIN, ...args], opts);
}

function splitLines(text: string): string[] {
  const lines = text.split("\n");
  if (lines[lines.length - 1] === "") lines.pop();
  return lines;
}

// --- mounts and processes -------------------------------------------------------------------

export function mountTable(): MountEntry[] {
  return readMountTableSync();
}

/** The topmost mount exactly at `path` (a resolved path), or null. */
export function mountAt(path: string): MountEntry | null {
  return mountTable().findLast((e) => e.mountpoint === path) ?? null;
}

export function mountsUnder(dir: string): MountEntry[] {
  return mountTable().filter((e) => e.mountpoint === dir || e.mountpoint.startsWith(`${dir}/`));
}

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

function execQuiet(file: string, args: readonly string[], timeoutMs: number): Promise<boolean> {
  return new Promise((resolve) => {
    execFile(file, args, { timeout: timeoutMs }, (err) => resolve(err === null));
  });
}

/**
 * Unmounts everything under `dir`, the latest mount first: a mount may sit on one made before
 * it, or use it (a union whose layers are on a tmpfs in the same dir), so creation order is
 * what unmounting must undo. `umount -l` only when a plain one fails.
 */
export async function unmountAllUnder(dir: string): Promise<void> {
  const entries = mountsUnder(dir).reverse();
  for (const entry of entries) {
    if (!(await execQuiet("umount", [entry.mountpoint], 5_000))) {
      await execQuiet("umount", ["-l", entry.mountpoint], 5_000);
    }
  }
}

/** SIGTERM, then SIGKILL after a grace period, to every process using `dir`. */
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

// --- the per-test dir -----------------------------------------------------------------------

/** A temp dir for one test, with its own runtime dir for daemon records. */
export class CliTestDir {
  readonly path: string;
  readonly runtimeDir: string;

  private constructor(path: string) {
    this.path = path;
    this.runtimeDir = join(path, "run");
  }

  static create(prefix = "unionfs-cli-"): CliTestDir {
    return new CliTestDir(realpathSync(mkdtempSync(join(tmpdir(), prefix))));
  }

  /** Environment for CLI runs that keeps daemon records inside this dir. */
  get env(): Record<string, string> {
    return { UNIONFS_RUNTIME_DIR: this.runtimeDir };
  }

  /** Makes `rel` (and its parents) and returns its absolute path. */
  dir(rel: string): string {
    const path = join(this.path, rel);
    mkdirSync(path, { recursive: true });
    return path;
  }

  /** Mounts a tmpfs on `rel` (made if needed); the cleanup unmounts it with everything else. */
  mountTmpfs(rel: string, size = "256m"): string {
    const path = this.dir(rel);
    mount("tmpfs", path, "tmpfs", 0, `size=${size},mode=0755`);
    return path;
  }

  /** This dir as a place for a filesystem layout's directories (fs-layout.ts). */
  place(): Place {
    return { mkdir: (rel) => this.dir(rel), mountTmpfs: (rel, size) => this.mountTmpfs(rel, size) };
  }

  /** The pid a daemon recorded for `mountpoint` (a resolved path), or null. */
  daemonPid(mountpoint: string): number | null {
    const dir = join(this.runtimeDir, "mounts");
    if (!existsSync(dir)) return null;
    for (const name of readdirSync(dir)) {
      if (!name.endsWith(".json")) continue;
      try {
        const record = JSON.parse(readFileSync(join(dir, name), "utf8")) as { pid?: unknown; mountpoint?: unknown };
        if (record.mountpoint === mountpoint && typeof record.pid === "number") return record.pid;
      } catch {
        // a record being replaced
      }
    }
    return null;
  }

  /** Leftovers that a finished command must not leave: mounts under the dir, live processes. */
  leftovers(): { mounts: string[]; processes: number[] } {
    return { mounts: mountsUnder(this.path).map((e) => e.mountpoint), processes: processesUsing(this.path) };
  }

  /**
   * Unmounts (daemons then exit by themselves), kills what is still running, unmounts what
   * those left (dead FUSE mounts), and removes the dir. Throws rather than delete under a mount.
   */
  async cleanup(): Promise<void> {
    await unmountAllUnder(this.path);
    await killProcessesUsing(this.path);
    await unmountAllUnder(this.path);
    const left = mountsUnder(this.path).map((e) => e.mountpoint);
    if (left.length > 0) throw new Error(`still mounted after cleanup, not removing ${this.path}: ${left.join(", ")}`);
    rmSync(this.path, { recursive: true, force: true });
  }
}
