// @ts-check
/**
 * Process helpers for the driver benchmarks: running a command with a timeout, timing one,
 * reading a daemon's CPU time, dropping the page cache, and finding mounts.
 *
 * Every child is ours and is stopped by its pid; nothing here signals a process by name.
 */
import { execFileSync, spawn } from "node:child_process";
import { existsSync, readFileSync, writeFileSync } from "node:fs";

/**
 * @typedef {object} CommandSpec
 * @property {string[]} argv
 * @property {Record<string, string>} [env]  added to this process's environment
 * @property {boolean} [captureStdout]       keep stdout (else it goes to /dev/null)
 */

/**
 * @typedef {object} CommandResult
 * @property {number | null} code
 * @property {string | null} signal
 * @property {string} stdout
 * @property {string} stderr   the first 4 KiB
 * @property {number} seconds  wall time from spawn to exit
 */

const STDERR_KEEP = 4096;

/** Runs a command to completion; a command still running after `timeoutMs` is killed. */
export function runCommand(/** @type {CommandSpec} */ spec, timeoutMs = 600_000) {
  return /** @type {Promise<CommandResult>} */ (
    new Promise((resolve, reject) => {
      const [file, ...args] = spec.argv;
      if (file === undefined) throw new Error("empty command");
      const started = process.hrtime.bigint();
      const child = spawn(file, args, {
        env: { ...process.env, ...spec.env },
        stdio: ["ignore", spec.captureStdout ? "pipe" : "ignore", "pipe"],
        cwd: "/",
      });
      let stdout = "";
      let stderr = "";
      child.stdout?.on("data", (chunk) => {
        stdout += chunk.toString("utf8");
      });
      child.stderr?.on("data", (chunk) => {
        if (stderr.length < STDERR_KEEP) stderr += chunk.toString("utf8");
      });
      const timer = setTimeout(() => child.kill("SIGKILL"), timeoutMs);
      child.on("error", (e) => {
        clearTimeout(timer);
        reject(e);
      });
      child.on("exit", (code, signal) => {
        const seconds = Number(process.hrtime.bigint() - started) / 1e9;
        clearTimeout(timer);
        // stdio may close a moment after exit; the time is taken at exit
        const done = () => resolve({ code, signal, stdout, stderr: stderr.slice(0, STDERR_KEEP), seconds });
        if (child.stdout === null && child.stderr === null) done();
        else child.on("close", done);
      });
    })
  );
}

/** Runs a setup command; throws with its stderr when it fails. */
export async function mustRun(/** @type {string[]} */ argv, env = {}, timeoutMs = 600_000) {
  const res = await runCommand({ argv, env }, timeoutMs);
  if (res.code !== 0) {
    throw new Error(`${argv.slice(0, 3).join(" ")} failed (${res.code ?? res.signal}): ${firstLine(res.stderr)}`);
  }
  return res;
}

export function firstLine(text) {
  return (text.trim().split("\n")[0] ?? "").slice(0, 300);
}

const CLK_TCK = (() => {
  try {
    return Number(execFileSync("getconf", ["CLK_TCK"], { encoding: "utf8" }).trim()) || 100;
  } catch {
    return 100;
  }
})();

/** User + system CPU seconds of a process (all its threads, live and exited), or null. */
export function processCpuSeconds(/** @type {number} */ pid) {
  try {
    const stat = readFileSync(`/proc/${pid}/stat`, "utf8");
    const fields = stat.slice(stat.lastIndexOf(")") + 2).split(" ");
    // fields[0] is field 3 (state): utime and stime are fields 14 and 15
    return (Number(fields[11]) + Number(fields[12])) / CLK_TCK;
  } catch {
    return null;
  }
}

export function isAlive(/** @type {number} */ pid) {
  try {
    const stat = readFileSync(`/proc/${pid}/stat`, "utf8");
    const state = stat.slice(stat.lastIndexOf(")") + 2, stat.lastIndexOf(")") + 3);
    return state !== "Z" && state !== "X";
  } catch {
    return false;
  }
}

/** Writes back dirty data, so a timed run does not pay for the previous one's writeback. */
export async function syncAll() {
  await mustRun(["sync"]);
}

/** Empties the page, dentry and inode caches (cold runs). */
export async function dropCaches() {
  await syncAll();
  writeFileSync("/proc/sys/vm/drop_caches", "3");
}

/** Mount points in this mount namespace, unescaped, in mount order. */
export function mountPoints() {
  return readFileSync("/proc/self/mountinfo", "utf8")
    .split("\n")
    .filter((l) => l.length > 0)
    .map((l) => (l.split(" ")[4] ?? "").replace(/\\([0-7]{3})/g, (_, o) => String.fromCharCode(Number.parseInt(o, 8))));
}

export function isMounted(/** @type {string} */ path) {
  return mountPoints().includes(path);
}

/** Polls until `cond()` or the deadline; returns whether it held. */
export async function waitFor(/** @type {() => boolean} */ cond, timeoutMs = 10_000, stepMs = 10) {
  const deadline = Date.now() + timeoutMs;
  while (Date.now() < deadline) {
    if (cond()) return true;
    await new Promise((r) => setTimeout(r, stepMs));
  }
  return cond();
}

/** The absolute path of `name` on PATH, or null. */
export function which(/** @type {string} */ name) {
  for (const dir of (process.env.PATH ?? "/usr/sbin:/usr/bin:/sbin:/bin").split(":")) {
    if (dir.length > 0 && existsSync(`${dir}/${name}`)) return `${dir}/${name}`;
  }
  return null;
}

/**
 * Lets SIGINT and SIGTERM end a run gracefully instead of killing it with its mounts still up:
 * `interrupted()` says whether one came (after `say` logged it); `release()` puts the default
 * handling back.
 */
export function catchInterrupts(/** @type {() => void} */ say) {
  let flag = false;
  const onSignal = () => {
    flag = true;
    say();
  };
  process.on("SIGINT", onSignal);
  process.on("SIGTERM", onSignal);
  return {
    interrupted: () => flag,
    release: () => {
      process.off("SIGINT", onSignal);
      process.off("SIGTERM", onSignal);
    },
  };
}
