/**
 * Helpers for crash-safety tests: find a unionfs daemon's pid, kill it with SIGKILL, detach the
 * dead FUSE mount it leaves behind, and inspect what it left in its work dir.
 *
 * Invariants: a killed daemon is waited for (its pid is gone, or a zombie) before anything looks
 * at the layers, so no half-done syscall of the daemon can land after the check; a dead mount is
 * detached lazily, as nothing can be unmounted cleanly through a dead connection.
 */
import { createHash, type Hash } from "node:crypto";
import {
  closeSync,
  createReadStream,
  existsSync,
  openSync,
  readdirSync,
  readFileSync,
  rmSync,
  statSync,
  writeFileSync,
} from "node:fs";
import { open } from "node:fs/promises";
import { join } from "node:path";
import { ficlone } from "../sys/copy.js";
import { MNT_DETACH, umount2 } from "../sys/mount.js";
import { isAlive } from "../sys/process-watch.js";
import { waitUntil } from "./processes.js";
import { Rng } from "./rng.js";
import { mountsUnder } from "./scratch.js";

/** The pid the daemon serving `mountpoint` recorded in `runtimeDir` (see fuse/runtime-state.ts). */
export function recordedDaemonPid(runtimeDir: string, mountpoint: string): number | null {
  const dir = join(runtimeDir, "mounts");
  if (!existsSync(dir)) return null;
  for (const name of readdirSync(dir).filter((n) => n.endsWith(".json"))) {
    try {
      const record = JSON.parse(readFileSync(join(dir, name), "utf8")) as { pid?: unknown; mountpoint?: unknown };
      if (record.mountpoint === mountpoint && typeof record.pid === "number") return record.pid;
    } catch {
      // a record being replaced
    }
  }
  return null;
}

/** SIGKILL, then wait until the process is gone; throws if it outlives the wait. */
export async function killHard(pid: number): Promise<void> {
  try {
    process.kill(pid, "SIGKILL");
  } catch {
    return; // already gone
  }
  if (!(await waitUntil(() => !isAlive(pid), 5_000))) throw new Error(`process ${pid} survived SIGKILL`);
}

/** Lazily detaches a mount whose daemon died (stat on it fails with ENOTCONN). */
export function detachDeadMount(mountpoint: string): void {
  if (!mountsUnder(mountpoint).includes(mountpoint)) return;
  umount2(mountpoint, MNT_DETACH);
}

/**
 * Whether files in `dir` can share extents (FICLONE): there, a copy-up is a reflink, done in
 * one step, and no temp file is ever seen growing.
 */
export function canReflink(dir: string): boolean {
  const a = join(dir, ".reflink-probe-a");
  const b = join(dir, ".reflink-probe-b");
  writeFileSync(a, "probe");
  const src = openSync(a, "r");
  const dest = openSync(b, "w");
  try {
    ficlone(dest, src);
    return true;
  } catch {
    return false;
  } finally {
    closeSync(src);
    closeSync(dest);
    rmSync(a, { force: true });
    rmSync(b, { force: true });
  }
}

/** Names in the work dir's temp area (`<workdir>/work`), where unionfs assembles new objects. */
export function workTemps(workdir: string): string[] {
  const dir = join(workdir, "work");
  return existsSync(dir) ? readdirSync(dir) : [];
}

/** The size of the largest regular file among the work dir's temps, or -1 when there is none. */
export function largestWorkTemp(workdir: string): number {
  let largest = -1;
  for (const name of workTemps(workdir)) {
    try {
      const st = statSync(join(workdir, "work", name));
      if (st.isFile()) largest = Math.max(largest, st.size);
    } catch {
      // renamed into place meanwhile
    }
  }
  return largest;
}

export async function sha256File(path: string): Promise<string> {
  const hash = createHash("sha256");
  for await (const chunk of createReadStream(path)) hash.update(chunk as Buffer);
  return hash.digest("hex");
}

/**
 * Writes `size` bytes of incompressible data (one seeded MiB, each copy of it with its offset
 * stamped in, so no two MiB are equal) and returns the running sha256 of what it wrote, not yet
 * digested, so a caller can work out the hash of the file after an append without reading it.
 */
export async function writeBigFile(path: string, size: number, seed: number): Promise<Hash> {
  const MIB = 1 << 20;
  const block = new Rng(seed).bytes(MIB);
  const hash = createHash("sha256");
  const fh = await open(path, "wx", 0o644);
  try {
    for (let off = 0; off < size; off += MIB) {
      const n = Math.min(MIB, size - off);
      block.writeUInt32LE(off / MIB, 0);
      await fh.write(block, 0, n, off);
      hash.update(block.subarray(0, n));
    }
  } finally {
    await fh.close();
  }
  return hash;
}
