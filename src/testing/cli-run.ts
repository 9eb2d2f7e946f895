/**
 * Running the built CLI (dist/cli/main.js) as a child process. A command is always run with a
 * timeout (a hung daemon must not hang the suite); the per-test dir it works in, and its
 * cleanup, is a Scratch (scratch.ts).
 *
 * Environments are built by wrapping the command, outermost first:
 *   nsenter -m (the mount namespace of a running process: user-fuse.ts)
 *   unshare -m (private mount namespace; setup commands run there as root)
 *   setpriv --reuid --regid --clear-groups (an unprivileged caller)
 *   the command itself
 */
import { type ChildProcess, spawn } from "node:child_process";
import { existsSync } from "node:fs";
import { join } from "node:path";
import { fileURLToPath } from "node:url";
import { type MountEntry, readMountTableSync } from "../sys/mountinfo.js";

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
  /** run in the mount namespace of this process (which must stay alive meanwhile) */
  mountNamespaceOf?: number;
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
const NSENTER = findProgram("nsenter") ?? "nsenter";

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
  if (opts.mountNamespaceOf !== undefined) argv = [NSENTER, "-t", String(opts.mountNamespaceOf), "-m", "--", ...argv];
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

/** The topmost mount exactly at `path` (a resolved path), or null. */
export function mountAt(path: string): MountEntry | null {
  return readMountTableSync().findLast((e) => e.mountpoint === path) ?? null;
}
