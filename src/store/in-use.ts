/**
 * Whether a store directory (a layer's diff dir, a container's upper) is in use by a mount:
 * a unionfs daemon holds a flock on every layer directory it serves (src/daemon/layer-locks.ts),
 * and kernel overlayfs names its layer directories in its mount options.
 */
import { closeSync, constants as fsc, openSync } from "node:fs";
import { parseOverlayOptions } from "../format/overlay-options.js";
import { tryLockExclusive, unlock } from "../sys/flock.js";
import { type MountEntry, readMountTable } from "../sys/mountinfo.js";

export async function dirInUse(dir: string): Promise<boolean> {
  const fd = openSync(dir, fsc.O_RDONLY | fsc.O_DIRECTORY);
  try {
    if (!tryLockExclusive(fd)) return true;
    unlock(fd);
  } finally {
    closeSync(fd);
  }
  return overlayMountUses(dir, await readMountTable());
}

/**
 * Whether a kernel overlay mount names `dir` as a layer or work dir. The kernel shows the paths
 * as the mount was given them: one given relative to another directory is not recognised.
 */
export function overlayMountUses(dir: string, table: readonly MountEntry[]): boolean {
  return table.some((m) => {
    if (m.fstype !== "overlay") return false;
    const { lowerdir = [], upperdir, workdir } = parseOverlayOptions(m.superOptions);
    return lowerdir.includes(dir) || upperdir === dir || workdir === dir;
  });
}
