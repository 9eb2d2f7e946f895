/**
 * Background mounts: the CLI re-runs itself detached with a pipe on fd 3, and exits only when
 * the child reports "ready" (the mount is live) or an error line. The child's stdio is detached
 * from the caller (logs go to $UNIONFS_LOG when set), so a caller reading our output is not kept
 * waiting by the daemon.
 */
import { spawn } from "node:child_process";
import { closeSync, openSync, writeSync } from "node:fs";
import { UserError } from "../errors.js";

const CHILD_ENV = "UNIONFS_DAEMON_CHILD";
const READY_FD = 3;
/** how long a child that reported an error may take to exit before it is killed */
const FAILED_EXIT_WAIT_MS = 5_000;

export function isDaemonChild(): boolean {
  return process.env[CHILD_ENV] === "1";
}

/** Starts the daemon child and waits for its verdict; resolves with its pid once ready. */
export function startDaemon(argv: readonly string[]): Promise<number> {
  const logFile = process.env.UNIONFS_LOG;
  const log = logFile === undefined ? "ignore" : openSync(logFile, "a");
  const child = spawn(process.execPath, [...process.execArgv, ...argv], {
    detached: true,
    stdio: ["ignore", log, log, "pipe"],
    env: { ...process.env, [CHILD_ENV]: "1" },
  });
  if (typeof log === "number") closeSync(log);
  const pipe = child.stdio[READY_FD];
  return new Promise((resolve, reject) => {
    let text = "";
    // A failed child is on its way out; wait for it, so that no daemon outlives a failed mount.
    const fail = (error: UserError) => {
      if (child.exitCode !== null || child.signalCode !== null) return reject(error);
      const kill = setTimeout(() => child.kill("SIGKILL"), FAILED_EXIT_WAIT_MS);
      child.once("exit", () => {
        clearTimeout(kill);
        reject(error);
      });
    };
    pipe?.on("data", (chunk: Buffer) => {
      text += chunk.toString("utf8");
    });
    pipe?.on("close", () => {
      const line = text.split("\n")[0] ?? "";
      if (line === "ready") {
        child.unref();
        resolve(child.pid ?? 0);
      } else if (line.startsWith("error: ")) {
        fail(new UserError(line.slice("error: ".length)));
      } else {
        fail(new UserError("the mount daemon exited before the mount was ready (set UNIONFS_LOG=FILE for its log)"));
      }
    });
  });
}

/** In the daemon child: tell the waiting parent how it went, then let go of the pipe. */
export function reportToParent(outcome: { ready: true } | { error: string }): void {
  if (!isDaemonChild()) return;
  try {
    writeSync(READY_FD, "ready" in outcome ? "ready\n" : `error: ${outcome.error}\n`);
    closeSync(READY_FD);
  } catch {
    // the parent is gone; nobody to tell
  }
}
