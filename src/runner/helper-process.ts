/**
 * The native helper as a process: started with our stdin/stdout/stderr, in a session of its own
 * (so a terminal's signals reach the command once, through `unionfs run`, not twice), and
 * waited for. Through posix_spawn (src/sys/spawn.ts) when its addon is built; otherwise through
 * node:child_process, loaded only then: it costs a third of what `unionfs run` adds to Node's
 * start-up. Both give the helper the same process state; the tests run both. Or handed over:
 * started through posix_spawn, with this process becoming its waiter (native/unionfs-wait.c).
 */
import { UserError } from "../errors.js";
import { type Exit, loadHandOver, loadSpawnSession, type SpawnSession } from "../sys/spawn.js";

export type HelperSpawner = "posix_spawn" | "child_process";

/** posix_spawn when the addon loads, else child_process. */
export function defaultSpawner(): HelperSpawner {
  return loadSpawnSession() === null ? "child_process" : "posix_spawn";
}

/**
 * Runs `file ARGS...`; calls `started(pid)` as soon as it runs (signals may be sent to it from
 * then on) and resolves with how it exited. Rejects with a UserError when it cannot start.
 */
export async function runHelperProcess(
  file: string,
  args: readonly string[],
  started: (pid: number) => void,
  spawner: HelperSpawner = defaultSpawner(),
): Promise<Exit> {
  const spawnSession = spawner === "posix_spawn" ? loadSpawnSession() : null;
  if (spawnSession !== null) return viaPosixSpawn(spawnSession, file, args, started);
  const { spawn } = await import("node:child_process");
  return new Promise((resolve, reject) => {
    const child = spawn(file, args, { stdio: "inherit", detached: true });
    child.on("error", (e: NodeJS.ErrnoException) => reject(cannotStart(file, e)));
    child.on("exit", (code, signal) => resolve({ code, signal }));
    if (child.pid !== undefined) started(child.pid);
  });
}

function viaPosixSpawn(
  spawnSession: SpawnSession,
  file: string,
  args: readonly string[],
  started: (pid: number) => void,
): Promise<Exit> {
  let child: ReturnType<SpawnSession>;
  try {
    child = spawnSession(file, args);
  } catch (e) {
    throw cannotStart(file, e as NodeJS.ErrnoException);
  }
  started(child.pid);
  return child.exited;
}

/** Whether this build can hand the run over (handOverHelper). */
export function canHandOver(): boolean {
  return loadHandOver() !== null;
}

/**
 * Starts `file ARGS...` as runHelperProcess does, then replaces this process with `waiter PID`,
 * which passes signals on to it and exits with its status; once canHandOver() said it can.
 * Resolves only if the waiter could not be exec'd (this process then waited for the helper
 * itself); rejects with a UserError when the helper cannot start.
 */
export async function handOverHelper(
  file: string,
  args: readonly string[],
  waiter: string,
  started: (pid: number) => void,
): Promise<Exit> {
  const handOver = loadHandOver();
  if (handOver === null) throw cannotStart(file, new Error("the spawn addon is not built"));
  let child: ReturnType<typeof handOver>;
  try {
    child = handOver(file, args, waiter);
  } catch (e) {
    throw cannotStart(file, e as NodeJS.ErrnoException);
  }
  started(child.pid);
  return child.exited;
}

/** The same message whichever way the start failed: `cannot start FILE: ENOENT`. */
function cannotStart(file: string, e: NodeJS.ErrnoException): UserError {
  return new UserError(`run: cannot start ${file}: ${e.code ?? e.message}`);
}
