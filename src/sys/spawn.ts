/**
 * Starting a program in a session of its own and learning how it exited, through posix_spawn in
 * a small N-API addon (native/unionfs-spawn.c) rather than node:child_process: for `unionfs
 * run`, whose start-up budget that module alone would use up (see the addon for the numbers).
 * No koffi here: loading it costs more than child_process.
 *
 * The addon waits for the child on a thread of its own and reports back on Node's thread; the
 * pending report keeps the event loop alive meanwhile, as a ChildProcess handle would. Or, with
 * `handOver`, this process execs a waiter program right after starting the child (Node 20
 * has no exec of its own).
 */
import { constants } from "node:os";
import { join } from "node:path";
import { fsErrorFromErrno } from "../errors.js";

/** Where tools/build-native.mjs puts the addon (from dist/sys/, src/sys/ or dist/cli/run.cjs). */
const ADDON = join(import.meta.dirname, "../../native/build/unionfs-spawn.node");

interface Addon {
  /** pid, or -errno; `onExit` gets the wait status, or -errno */
  spawn(file: string, argv: readonly string[], onExit: (status: number) => void): number;
  /** returns only when the exec of `waiter` failed: the child's pid, or -errno */
  handover(file: string, argv: readonly string[], waiter: string, onExit: (status: number) => void): number;
}

export interface Exit {
  /** exit code, or null when a signal ended it */
  code: number | null;
  signal: NodeJS.Signals | null;
}

export interface SpawnedProcess {
  pid: number;
  /** settles once the process has exited and been reaped */
  exited: Promise<Exit>;
}

export type SpawnSession = (file: string, args: readonly string[]) => SpawnedProcess;

/** Starts `file`, then becomes `waiter PID`; what it returns only if that exec failed. */
export type HandOver = (file: string, args: readonly string[], waiter: string) => SpawnedProcess;

let addon: Addon | null | undefined;

function loadAddon(): Addon | null {
  if (addon === undefined) {
    try {
      // process.dlopen is what require() does with a .node file, without the module machinery
      const module = { exports: {} as Addon };
      process.dlopen(module, ADDON);
      addon = module.exports;
    } catch {
      addon = null;
    }
  }
  return addon;
}

/**
 * `spawnSession`, or null when the addon is not built (it needs Node's headers) or cannot be
 * loaded: the caller then uses child_process.
 */
export function loadSpawnSession(): SpawnSession | null {
  return loadAddon() === null ? null : spawnSession;
}

/** `handOver`, or null without the addon (Node 20 has no exec of its own). */
export function loadHandOver(): HandOver | null {
  return loadAddon() === null ? null : handOver;
}

/**
 * Starts `file` as `spawnSession` does, then replaces this process with `waiter PID` (execve:
 * the same pid, environment, stdin/stdout/stderr and children; Node's own descriptors are all
 * close-on-exec), which starts with every signal blocked. Nothing of Node runs after it: no
 * exit handlers, no pending writes. Returns only when that exec failed: then the child is
 * waited for here, as after spawnSession. Throws an FsError (syscall "spawn") when `file`
 * cannot be started.
 */
function handOver(file: string, args: readonly string[], waiter: string): SpawnedProcess {
  const { exited, onExit } = exitPromise();
  const pid = (addon as Addon).handover(file, [file, ...args], waiter, onExit);
  if (pid < 0) throw fsErrorFromErrno(-pid, "spawn", file);
  return { pid, exited };
}

/**
 * Starts `file` with `args` in a new session, with our stdin/stdout/stderr and environment,
 * every signal unblocked and at its default action (child_process.spawn with stdio "inherit"
 * and detached). Throws an FsError (syscall "spawn") when it cannot be started.
 */
function spawnSession(file: string, args: readonly string[]): SpawnedProcess {
  const { exited, onExit } = exitPromise();
  const pid = (addon as Addon).spawn(file, [file, ...args], onExit);
  if (pid < 0) throw fsErrorFromErrno(-pid, "spawn", file);
  return { pid, exited };
}

/** The addon's onExit callback and the promise it settles. */
function exitPromise(): { exited: Promise<Exit>; onExit: (status: number) => void } {
  let settle: (exit: Exit) => void = () => {};
  const exited = new Promise<Exit>((resolve) => {
    settle = resolve;
  });
  // -ECHILD: something else reaped it and its status is lost: say nothing rather than guess
  const onExit = (status: number) => settle(status < 0 ? { code: null, signal: null } : decodeStatus(status));
  return { exited, onExit };
}

const SIGNAL_NAMES = new Map(Object.entries(constants.signals).map(([name, n]) => [n, name as NodeJS.Signals]));

/** A waitpid status as child_process reports it. */
export function decodeStatus(status: number): Exit {
  const signal = status & 0x7f;
  if (signal === 0) return { code: (status >> 8) & 0xff, signal: null };
  return { code: null, signal: SIGNAL_NAMES.get(signal) ?? null };
}
