/**
 * Whether another process still runs, and a watch that tells when it is gone. From /proc: no
 * pidfd, which Node cannot poll without a native helper.
 *
 * A pid is only an identity together with its start time: once a process has exited, the
 * kernel may hand its pid to a new one. The watch remembers the start time it saw first, so a
 * reused pid counts as the old process gone.
 */
import { readFileSync } from "node:fs";
import { hasCode } from "../errors.js";

/**
 * True while `pid` runs. A zombie counts as gone: it has exited and let go of everything; only
 * its parent's wait() is missing (a daemon's parent is init, which may reap late or, in some
 * containers, never).
 */
export function isAlive(pid: number): boolean {
  const stat = procStat(pid);
  return stat !== null && running(stat);
}

function running(stat: ProcStat): boolean {
  return stat.state !== "Z" && stat.state !== "X";
}

interface ProcStat {
  state: string;
  /** field 22: clock ticks since boot at which the process started */
  startTime: string;
}

function procStat(pid: number): ProcStat | null {
  let text: string;
  try {
    text = readFileSync(`/proc/${pid}/stat`, "utf8");
  } catch (e) {
    if (hasCode(e, "ENOENT", "ESRCH")) return null;
    throw e;
  }
  // the command name (field 2) may hold spaces and parentheses: fields are counted after its ")"
  const fields = text.slice(text.lastIndexOf(")") + 2).split(" ");
  return { state: fields[0] ?? "", startTime: fields[19] ?? "" };
}

/**
 * Calls `onGone` once `pid` has exited (or was never there), checking every `intervalMs`.
 * The timer does not keep the event loop alive. Returns a function that stops the watch.
 */
export function watchProcess(pid: number, onGone: () => void, intervalMs = 250): () => void {
  const first = procStat(pid)?.startTime;
  const gone = (): boolean => {
    try {
      const stat = procStat(pid);
      return stat === null || !running(stat) || stat.startTime !== first;
    } catch {
      return false; // /proc unreadable for a moment: ask again at the next tick
    }
  };
  if (gone()) {
    queueMicrotask(onGone);
    return () => {};
  }
  const timer = setInterval(() => {
    if (!gone()) return;
    clearInterval(timer);
    onGone();
  }, intervalMs);
  timer.unref();
  return () => clearInterval(timer);
}
