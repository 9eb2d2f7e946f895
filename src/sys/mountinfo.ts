/**
 * The kernel's mount table, /proc/self/mountinfo (proc(5)), one line per mount:
 *
 *   36 35 98:0 /mnt1 /mnt/parent rw,noatime master:1 - ext3 /dev/root rw,errors=continue
 *   id parent dev root mountpoint mount-options optional... - fstype source super-options
 *
 * The kernel escapes space, tab, newline and backslash in paths as `\ooo` octal, and in the
 * super options also the comma inside a value, so fields split on ' ' and options on ','
 * before the escapes are removed. Later lines are mounted on top of earlier ones at the same
 * mount point. Mount points are compared after resolving symlinks, as the kernel records them.
 */
import { readFileSync } from "node:fs";
import { readFile, realpath } from "node:fs/promises";

export interface MountEntry {
  id: number;
  parentId: number;
  /** the path inside the mounted filesystem that appears at the mount point ("/" unless a bind) */
  root: string;
  mountpoint: string;
  /** per-mount options (rw, nosuid, relatime, ...) */
  mountOptions: string[];
  fstype: string;
  source: string;
  /** the filesystem's own options, each as the filesystem was given it */
  superOptions: string[];
}

export function unescapeMountField(field: string): string {
  return field.replace(/\\([0-7]{3})/g, (_, oct: string) => String.fromCharCode(Number.parseInt(oct, 8)));
}

function optionList(field: string): string[] {
  return field.length === 0 ? [] : field.split(",").map(unescapeMountField);
}

/** Parses mountinfo text; malformed lines are skipped. */
export function parseMountInfo(text: string): MountEntry[] {
  const entries: MountEntry[] = [];
  for (const line of text.split("\n")) {
    const fields = line.split(" ");
    const sep = fields.indexOf("-", 6);
    if (sep < 0) continue;
    const [id, parentId, , root, mountpoint, mountOptions] = fields;
    const [fstype, source, superOptions] = fields.slice(sep + 1);
    if (root === undefined || mountpoint === undefined || fstype === undefined) continue;
    entries.push({
      id: Number(id),
      parentId: Number(parentId),
      root: unescapeMountField(root),
      mountpoint: unescapeMountField(mountpoint),
      mountOptions: optionList(mountOptions ?? ""),
      fstype,
      source: unescapeMountField(source ?? ""),
      superOptions: optionList(superOptions ?? ""),
    });
  }
  return entries;
}

export async function readMountTable(): Promise<MountEntry[]> {
  return parseMountInfo(await readFile("/proc/self/mountinfo", "utf8"));
}

export function readMountTableSync(): MountEntry[] {
  return parseMountInfo(readFileSync("/proc/self/mountinfo", "utf8"));
}

/** The topmost mount at exactly `mountpoint` (already resolved), or null. */
export async function findMount(mountpoint: string): Promise<MountEntry | null> {
  return (await readMountTable()).findLast((e) => e.mountpoint === mountpoint) ?? null;
}

/** Mount points at `dir` or below it, in mount order. */
export function mountpointsUnder(table: readonly MountEntry[], dir: string): string[] {
  return table.map((e) => e.mountpoint).filter((m) => m === dir || m.startsWith(`${dir}/`));
}

export async function canonicalMountpoint(path: string): Promise<string> {
  return realpath(path);
}
