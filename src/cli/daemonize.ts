/**
 * Background mounts: the CLI re-runs itself detached with a pipe on fd 3, and exits only when
 * the child reports "ready" (the mount is live) or an error line. The child's stdio is detached
 * from the caller (logs go to $UNIONFS_LOG when set), so a caller reading our output is not kept
 * waiting by the daemon. The child's side of the exchange is daemon-report.ts.
 */
import { spawn } from "node:child_process";
import { closeSync, openSync } from "node:fs";
import { UserError } from "../errors.js";
import { DAEMON_CHILD_ENV, READY_FD } from "./daemon-report.js";

/** how long a child that reported an error may take to exit before it is killed */
const FAILED_EXIT_WAIT_MS = 5_000;

/** Starts the daemon child and waits for its verdict; resolves with its pid once ready. */
export function startDaemon(argv: readonly string[]): Promise<number> {
  const logFile = process.env.UNIONFS_LOG;
  const log = logFile === undefined ? "ignore" : openSync(logFile, "a");
  const child = spawn(process.execPath, [...process.execArgv, ...argv], {
    detached: true,
    stdio: ["ignore", log, log, "pipe"],
    env: { ...process.env, [DAEMON_CHILD_ENV]: "1" },
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
