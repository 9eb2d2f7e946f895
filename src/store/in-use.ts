/**
 * Whether a store directory (a layer's diff dir, a container's upper) is in use by a mount:
 * a unionfs daemon holds a flock on every layer directory it serves (src/union/layer-locks.ts),
 * and kernel overlayfs names its layer directories in its mount options.
 */
import { closeSync, constants as fsc, openSync } from "node:fs";
import { readFile } from "node:fs/promises";
import { tryLockExclusive, unlock } from "../sys/flock.js";

export async function dirInUse(dir: string): Promise<boolean> {
  const fd = openSync(dir, fsc.O_RDONLY | fsc.O_DIRECTORY);
  try {
    if (!tryLockExclusive(fd)) return true;
    unlock(fd);
  } finally {
    closeSync(fd);
  }
  return overlayMountUses(dir, await readFile("/proc/self/mountinfo", "utf8"));
}

/** mountinfo escapes space, tab, newline and backslash as octal; overlayfs escapes ':' and ','. */
function escaped(dir: string): string {
  return dir
    .replace(/\\/g, "\\134")
    .replace(/ /g, "\\040")
    .replace(/\t/g, "\\011")
    .replace(/\n/g, "\\012")
    .replace(/([:,])/g, "\\$1");
}

export function overlayMountUses(dir: string, mountinfo: string): boolean {
  const needle = escaped(dir);
  return mountinfo.split("\n").some((line) => {
    const sep = line.indexOf(" - ");
    if (sep < 0 || !line.slice(sep + 3).startsWith("overlay ")) return false;
    const options = line.slice(sep + 3).split(" ")[2] ?? "";
    return options.split(/(?<!\\),/).some((opt) => {
      const value = opt.slice(opt.indexOf("=") + 1);
      return value.split(/(?<!\\):/).includes(needle);
    });
  });
}
