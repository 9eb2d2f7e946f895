/**
 * rm -rf for what a run leaves behind: its run dir, and with --rm its upper and work dir.
 *
 * Hand-written rather than fs.rmSync({ recursive: true }), which loads and compiles Node's
 * rimraf on every `unionfs run` (a tenth of its start-up cost). It never follows a symlink:
 * rmdir(2) refuses one (ENOTDIR), and entries are removed by their own type, a symlink being
 * unlinked and never descended into. Directories are tried with rmdir first: most of a run dir
 * is empty directories, which that removes in one call.
 */
import { chmodSync, readdirSync, rmdirSync, unlinkSync } from "node:fs";
import { join } from "node:path";
import { hasCode } from "../errors.js";

/**
 * Removes `path` and everything below it; null, or what could not be removed. Copes with what a
 * rootless overlay leaves (work/work, mode 000, owned by the caller): on a failure it makes the
 * directories searchable and tries again.
 */
export function removeTree(path: string): string | null {
  try {
    removeRecursive(path);
    return null;
  } catch {
    try {
      makeWritable(path);
      removeRecursive(path);
      return null;
    } catch (e) {
      return `cannot remove ${path}: ${(e as Error).message}`;
    }
  }
}

function removeRecursive(path: string): void {
  try {
    rmdirSync(path);
    return;
  } catch (e) {
    if (hasCode(e, "ENOENT")) return;
    if (hasCode(e, "ENOTDIR")) {
      unlink(path);
      return;
    }
    if (!hasCode(e, "ENOTEMPTY", "EEXIST")) throw e;
  }
  for (const entry of readdirSync(path, { withFileTypes: true })) {
    const child = join(path, entry.name);
    if (entry.isDirectory()) removeRecursive(child);
    else unlink(child);
  }
  rmdirSync(path);
}

function unlink(path: string): void {
  try {
    unlinkSync(path);
  } catch (e) {
    if (!hasCode(e, "ENOENT")) throw e;
  }
}

function makeWritable(dir: string): void {
  try {
    chmodSync(dir, 0o700);
    for (const entry of readdirSync(dir, { withFileTypes: true })) {
      if (entry.isDirectory()) makeWritable(join(dir, entry.name));
    }
  } catch {
    // best effort; the removal that follows reports what is left
  }
}
