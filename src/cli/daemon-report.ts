/**
 * The daemon child's side of a background mount (see daemonize.ts): whether this process is
 * that child, and its one report to the waiting parent on fd 3. Kept apart from daemonize.ts so
 * the error path of every command can report without loading node:child_process.
 */
import { closeSync, writeSync } from "node:fs";

/** set in the daemon child's environment */
export const DAEMON_CHILD_ENV = "UNIONFS_DAEMON_CHILD";
/** the pipe the parent reads the child's verdict from */
export const READY_FD = 3;

export function isDaemonChild(): boolean {
  return process.env[DAEMON_CHILD_ENV] === "1";
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
