/**
 * Where a daemon records itself so `unionfs umount` can find it: one small JSON file per
 * mount point under the runtime directory, written atomically (temp + rename).
 */
import { createHash } from "node:crypto";
import { mkdir, readFile, rename, rm, writeFile } from "node:fs/promises";
import { join } from "node:path";
import { isRootUser } from "../sys/privilege.js";

export interface DaemonRecord {
  pid: number;
  mountpoint: string;
}

export function runtimeDir(): string {
  if (process.env.UNIONFS_RUNTIME_DIR) return process.env.UNIONFS_RUNTIME_DIR;
  if (isRootUser()) return "/run/unionfs";
  return join(process.env.XDG_RUNTIME_DIR ?? `/tmp/unionfs-${process.getuid?.() ?? "user"}`, "unionfs");
}

function recordPath(mountpoint: string): string {
  const key = createHash("sha256").update(mountpoint).digest("hex").slice(0, 32);
  return join(runtimeDir(), "mounts", `${key}.json`);
}

export async function writeDaemonRecord(record: DaemonRecord): Promise<void> {
  const path = recordPath(record.mountpoint);
  await mkdir(join(runtimeDir(), "mounts"), { recursive: true, mode: 0o700 });
  const tmp = `${path}.${process.pid}.tmp`;
  await writeFile(tmp, JSON.stringify(record));
  await rename(tmp, path);
}

export async function readDaemonRecord(mountpoint: string): Promise<DaemonRecord | null> {
  try {
    const record = JSON.parse(await readFile(recordPath(mountpoint), "utf8")) as DaemonRecord;
    return record.mountpoint === mountpoint ? record : null;
  } catch {
    return null;
  }
}

/** Removes the record, but only if it still names `pid` (a newer daemon may own it now). */
export async function removeDaemonRecord(mountpoint: string, pid: number): Promise<void> {
  const record = await readDaemonRecord(mountpoint);
  if (record !== null && record.pid === pid) await rm(recordPath(mountpoint), { force: true });
}
