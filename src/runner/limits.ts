/**
 * Resource limits of a run, as the user writes them (`--memory 64m --cpus 0.5 --pids 64`) and
 * as cgroup files want them (bytes, a CFS quota per period, a process count).
 */
import { UserError } from "../errors.js";

export interface Limits {
  /** memory and swap together, in bytes */
  memoryBytes?: number;
  /** CPUs' worth of time per period, e.g. 0.5 */
  cpus?: number;
  /** maximum number of processes (tasks) */
  pids?: number;
}

/** The CFS period the quota is expressed in (100 ms, the kernel's and docker's default). */
export const CPU_PERIOD_US = 100_000;
/** The kernel refuses quotas below 1 ms. */
const MIN_QUOTA_US = 1_000;
/** docker's minimum: a smaller limit cannot even start a shell */
const MIN_MEMORY = 6 * 1024 * 1024;

const UNITS: Record<string, number> = { "": 1, b: 1, k: 1024, m: 1024 ** 2, g: 1024 ** 3, t: 1024 ** 4 };

/** `64m`, `1g`, `512k`, `1048576` (binary units, case-insensitive, optional trailing `b`). */
export function parseMemory(text: string): number {
  const match = /^(\d+(?:\.\d+)?)\s*([bkmgt]?)b?$/i.exec(text.trim());
  const unit = UNITS[(match?.[2] ?? "").toLowerCase()];
  if (match === null || unit === undefined) {
    throw new UserError(`run: --memory takes a size like 64m or 1g, not '${text}'`);
  }
  const bytes = Math.floor(Number(match[1]) * unit);
  if (bytes < MIN_MEMORY) throw new UserError(`run: --memory must be at least 6m, not '${text}'`);
  return bytes;
}

export function parseCpus(text: string): number {
  const cpus = /^\d+(\.\d+)?$|^\.\d+$/.test(text.trim()) ? Number(text) : Number.NaN;
  if (!Number.isFinite(cpus) || Math.round(cpus * CPU_PERIOD_US) < MIN_QUOTA_US) {
    throw new UserError(`run: --cpus takes a number of CPUs of at least 0.01, not '${text}'`);
  }
  return cpus;
}

export function parsePids(text: string): number {
  const pids = /^\d+$/.test(text.trim()) ? Number(text) : Number.NaN;
  if (!Number.isSafeInteger(pids) || pids < 1) throw new UserError(`run: --pids takes a positive count, not '${text}'`);
  return pids;
}

/** The CFS quota for `cpus` CPUs per CPU_PERIOD_US. */
export function cpuQuotaUs(cpus: number): number {
  return Math.round(cpus * CPU_PERIOD_US);
}

export function hasLimits(limits: Limits): boolean {
  return limits.memoryBytes !== undefined || limits.cpus !== undefined || limits.pids !== undefined;
}

/** `67108864` → `64m`, for messages. */
export function formatBytes(bytes: number): string {
  for (const [unit, size] of [
    ["g", 1024 ** 3],
    ["m", 1024 ** 2],
    ["k", 1024],
  ] as const) {
    if (bytes >= size && bytes % size === 0) return `${bytes / size}${unit}`;
  }
  return `${bytes}b`;
}
