/**
 * Reads the kernel's mount table (/proc/self/mountinfo) to answer "is something mounted here,
 * and what". Mount points are compared after resolving symlinks, as the kernel records them.
 */
import { readFile, realpath } from "node:fs/promises";

export interface MountEntry {
  mountpoint: string;
  fstype: string;
  source: string;
  options: string;
}

/** mountinfo escapes space, tab, newline and backslash as \ooo octal. */
export function unescapeMountField(field: string): string {
  return field.replace(/\\([0-7]{3})/g, (_, oct: string) => String.fromCharCode(Number.parseInt(oct, 8)));
}

export function parseMountInfo(text: string): MountEntry[] {
  const entries: MountEntry[] = [];
  for (const line of text.split("\n")) {
    if (line.length === 0) continue;
    const [left, right] = line.split(" - ");
    if (left === undefined || right === undefined) continue;
    const fields = left.split(" ");
    const tail = right.split(" ");
    const mountpoint = fields[4];
    if (mountpoint === undefined) continue;
    entries.push({
      mountpoint: unescapeMountField(mountpoint),
      fstype: tail[0] ?? "",
      source: unescapeMountField(tail[1] ?? ""),
      options: tail[2] ?? "",
    });
  }
  return entries;
}

export async function readMountTable(): Promise<MountEntry[]> {
  return parseMountInfo(await readFile("/proc/self/mountinfo", "utf8"));
}

/** The topmost mount at exactly `mountpoint` (already resolved), or null. */
export async function findMount(mountpoint: string): Promise<MountEntry | null> {
  const table = await readMountTable();
  for (let i = table.length - 1; i >= 0; i--) {
    const entry = table[i];
    if (entry !== undefined && entry.mountpoint === mountpoint) return entry;
  }
  return null;
}

export async function canonicalMountpoint(path: string): Promise<string> {
  return realpath(path);
}
