// @ts-check
/**
 * Counts the FUSE requests one mount receives, by opcode, from the kernel's
 * `fuse:fuse_request_send` tracepoint (`perf stat -a` with a filter on the connection, which
 * is the mount's device number). Counting happens in the kernel; the daemon is not touched, so
 * the same counter works for unionfs and fuse-overlayfs. FORGET is not counted (it bypasses
 * the request queue the tracepoint sits on).
 *
 * perf prints counts every INTERVAL_MS; stop() waits for an interval that ends after the
 * workload, so nothing the workload caused is lost, then sums the intervals.
 */
import { spawn } from "node:child_process";
import { runCommand, which } from "./proc.mjs";

const INTERVAL_MS = 25;
const EVENT = "fuse:fuse_request_send";

/** Opcodes counted one by one (include/uapi/linux/fuse.h); the rest only in the total. */
export const OPCODES = /** @type {const} */ ({
  LOOKUP: 1,
  GETATTR: 3,
  SETATTR: 4,
  READLINK: 5,
  MKNOD: 8,
  MKDIR: 9,
  UNLINK: 10,
  RMDIR: 11,
  RENAME: 12,
  OPEN: 14,
  READ: 15,
  WRITE: 16,
  RELEASE: 18,
  FSYNC: 20,
  SETXATTR: 21,
  GETXATTR: 22,
  LISTXATTR: 23,
  FLUSH: 25,
  OPENDIR: 27,
  READDIR: 28,
  RELEASEDIR: 29,
  ACCESS: 34,
  CREATE: 35,
  READDIRPLUS: 44,
  RENAME2: 45,
  STATX: 52,
});

/**
 * @typedef {object} RequestCounts
 * @property {number} total
 * @property {Record<string, number>} byOp  opcodes with a non-zero count
 */

/** null when requests can be counted here, else the reason they cannot. */
export async function counterUnavailable() {
  if (which("perf") === null) return "perf is not installed (apt-get install linux-perf)";
  const res = await runCommand({ argv: ["perf", "stat", "-x", ",", "-a", "-e", EVENT, "--", "true"] }, 30_000);
  if (res.code !== 0) return `perf cannot count ${EVENT}: ${res.stderr.trim().split("\n")[0] ?? ""}`;
  return null;
}

/** The kernel's dev_t (MAJOR << 20 | MINOR) for a device number as stat(2) reports it. */
export function kernelDev(/** @type {number} */ userDev) {
  const dev = BigInt(userDev);
  const major = ((dev >> 8n) & 0xfffn) | ((dev >> 32n) & ~0xfffn);
  const minor = (dev & 0xffn) | ((dev >> 12n) & ~0xffn);
  return Number((major << 20n) | minor);
}

/**
 * Starts counting the requests of FUSE connection `connection` (kernel dev_t); resolves once
 * perf is counting.
 */
export async function startRequestCounter(/** @type {number} */ connection) {
  const names = ["total", ...Object.keys(OPCODES)];
  const args = ["stat", "-x", ",", "-I", String(INTERVAL_MS), "-a"];
  for (const name of names) {
    const op = /** @type {Record<string, number>} */ (OPCODES)[name];
    const filter = op === undefined ? `connection == ${connection}` : `connection == ${connection} && opcode == ${op}`;
    args.push("-e", EVENT, "--filter", filter);
  }
  const child = spawn("perf", args, { stdio: ["ignore", "ignore", "pipe"] });
  /** @type {{ts: string, count: number}[]} */
  const lines = [];
  let partial = "";
  let errors = "";
  /** @type {(() => void)[]} */
  let waiters = [];
  const exited = new Promise((resolve) => child.on("close", resolve));
  child.stderr.on("data", (chunk) => {
    partial += chunk.toString("utf8");
    const parts = partial.split("\n");
    partial = parts.pop() ?? "";
    for (const line of parts) {
      const fields = line.trim().split(",");
      if (fields[3] === EVENT) lines.push({ ts: fields[0] ?? "", count: Number(fields[1]) || 0 });
      else if (errors.length < 2000) errors += `${line}\n`;
    }
    const ws = waiters;
    waiters = [];
    for (const w of ws) w();
  });
  const changed = () => new Promise((resolve) => waiters.push(() => resolve(undefined)));
  const completeGroups = () => Math.floor(lines.length / names.length);
  const waitGroups = async (/** @type {number} */ n) => {
    const deadline = Date.now() + 10_000;
    while (completeGroups() < n) {
      if (child.exitCode !== null || Date.now() > deadline) {
        child.kill("SIGKILL");
        throw new Error(`perf stopped counting: ${errors.trim().split("\n")[0] ?? "no output"}`);
      }
      await Promise.race([changed(), new Promise((r) => setTimeout(r, 50))]);
    }
  };
  await waitGroups(1);
  return {
    /** @returns {Promise<RequestCounts>} */
    async stop() {
      // an interval printed after this call covers the end of the workload
      await waitGroups(completeGroups() + 1);
      child.kill("SIGINT");
      await exited;
      /** @type {Record<string, number>} */
      const sums = {};
      lines.forEach((line, i) => {
        const name = names[i % names.length] ?? "total";
        sums[name] = (sums[name] ?? 0) + line.count;
      });
      const { total = 0, ...ops } = sums;
      const byOp = Object.fromEntries(Object.entries(ops).filter(([, v]) => v > 0));
      return { total, byOp };
    },
    /** Stops without counting (error paths). */
    abort() {
      if (child.exitCode === null) child.kill("SIGKILL");
    },
  };
}
