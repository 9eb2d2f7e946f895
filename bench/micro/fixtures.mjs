// @ts-check
/**
 * Layer trees for the micro benchmarks, built in a temp directory on disk (/var/tmp): the
 * union core is driven through its own API (no mount). Whiteouts are written the way the
 * kernel writes them when we are root (character device 0/0, trusted.overlay.opaque), else as
 * `.wh.` files and `.wh..wh..opq` markers, which the core reads too.
 */
import { execFileSync } from "node:child_process";
import { mkdir, mkdtemp, writeFile } from "node:fs/promises";
import { join } from "node:path";
import { openStack, UnionFs } from "./core.mjs";

export const IS_ROOT = process.getuid?.() === 0;

export async function tempRoot(/** @type {string} */ name) {
  await mkdir("/var/tmp", { recursive: true });
  return mkdtemp(join("/var/tmp", `unionfs-micro-${name}-`));
}

export function removeTree(/** @type {string} */ dir) {
  execFileSync("rm", ["-rf", "--one-file-system", "--", dir]);
}

/** Writes a whiteout for `name` in directory `dir`. */
export async function whiteout(/** @type {string} */ dir, /** @type {string} */ name) {
  if (IS_ROOT) execFileSync("mknod", [join(dir, name), "c", "0", "0"]);
  else await writeFile(join(dir, `.wh.${name}`), "");
}

/** Marks directory `dir` opaque. */
export async function opaque(/** @type {string} */ dir) {
  if (IS_ROOT) execFileSync("setfattr", ["-n", "trusted.overlay.opaque", "-v", "y", dir]);
  else await writeFile(join(dir, ".wh..wh..opq"), "");
}

/**
 * `count` lower layers (topmost first), an empty upper and a work dir under `root`.
 * @returns {Promise<{lowers: string[], upper: string, work: string}>}
 */
export async function layerDirs(/** @type {string} */ root, /** @type {number} */ count) {
  const lowers = [];
  for (let i = 0; i < count; i++) {
    const dir = join(root, `l${i}`);
    await mkdir(dir, { recursive: true });
    lowers.push(dir);
  }
  const upper = join(root, "upper");
  const work = join(root, "work");
  await mkdir(upper, { recursive: true });
  await mkdir(work, { recursive: true });
  return { lowers, upper, work };
}

/** A fresh union over the directories (empty node table and caches). */
export async function openUnion(/** @type {{lowers: string[], upper: string, work: string}} */ dirs) {
  return UnionFs.create(await openStack({ lowers: dirs.lowers, upper: dirs.upper, work: dirs.work }), {
    whiteout: "auto",
  });
}

/** Writes `count` small files named `${prefix}${i}` into `dir`, 64 at a time. */
export async function files(/** @type {string} */ dir, /** @type {string[]} */ names) {
  await mkdir(dir, { recursive: true });
  for (let i = 0; i < names.length; i += 64) {
    await Promise.all(names.slice(i, i + 64).map((n) => writeFile(join(dir, n), "x")));
  }
}
