// @ts-check
/**
 * Where the uppers go: on the data set's filesystem (the default, next to the lowers), or with
 * `--upper-fs tmpfs` on a tmpfs the harness mounts for the run, so that every copy-up crosses
 * from the lowers' filesystem to another one (issue 14).
 *
 * The tmpfs is one mount per run, under the run's scratch directory: each instance gets a fresh
 * directory on it for its upper and work dir (the work dir must share the upper's filesystem,
 * for kernel overlayfs and unionfs alike), removed at teardown so the memory goes back. The
 * harness unmounts it at the end of the run, interrupted or not; a tmpfs it could not unmount
 * (something still mounted over it) is detached with the rest of the scratch directory.
 */
import { statfsSync, statSync } from "node:fs";
import { mkdir } from "node:fs/promises";
import { join } from "node:path";
import { isMounted, mustRun, runCommand } from "./proc.mjs";

export const UPPER_FS = /** @type {const} */ (["data", "tmpfs"]);
/** @typedef {(typeof UPPER_FS)[number]} UpperFs */

/** statfs f_type values of the filesystems a bench may meet (ext2, ext3 and ext4 share one) */
const MAGIC = new Map([
  [0x01021994, "tmpfs"],
  [0xef53, "ext4"],
  [0x58465342, "xfs"],
  [0x9123683e, "btrfs"],
  [0x794c7630, "overlay"],
  [0x65735546, "fuse"],
  [0x858458f6, "ramfs"],
]);

/** The filesystem type of `path` as the kernel reports it (statfs), e.g. "tmpfs" or "ext4". */
export function filesystemType(/** @type {string} */ path) {
  const type = Number(statfsSync(path).type);
  return MAGIC.get(type) ?? `0x${type.toString(16)}`;
}

/** Whether two paths are on one filesystem (same st_dev). */
export function sameFilesystem(/** @type {string} */ a, /** @type {string} */ b) {
  return statSync(a).dev === statSync(b).dev;
}

/**
 * @typedef {object} UpperPlace
 * @property {UpperFs} kind
 * @property {string | null} root   where instance upper directories are made (null: in the instance's own dir)
 * @property {string | null} mount  the tmpfs's mount options as the kernel shows them
 * @property {() => Promise<void>} unmount
 */

/**
 * Prepares the place for the uppers of a run: nothing for "data", a tmpfs mounted at
 * `<scratch>/uppers` for "tmpfs".
 * @param {UpperFs} kind
 * @param {string} scratch  the run's scratch directory (cleaned up by the harness)
 * @returns {Promise<UpperPlace>}
 */
export async function prepareUpperPlace(kind, scratch) {
  if (kind === "data") return { kind, root: null, mount: null, unmount: async () => {} };
  const root = join(scratch, "uppers");
  await mkdir(root, { recursive: true });
  // default size (half the RAM): the biggest run keeps two 1 GiB files on it at once
  await mustRun(["mount", "-t", "tmpfs", "-o", "mode=0755", "unionfs-bench-uppers", root]);
  const shown = await runCommand({
    argv: ["findmnt", "-n", "-o", "OPTIONS", "--mountpoint", root],
    captureStdout: true,
  });
  return {
    kind,
    root,
    mount: shown.code === 0 ? shown.stdout.trim() : null,
    async unmount() {
      // a plain unmount, never throwing: it fails while an instance is still mounted over the
      // tmpfs, and the harness's cleanup then detaches everything under the scratch directory
      if (isMounted(root)) await runCommand({ argv: ["umount", root] }).catch(() => {});
    },
  };
}

/** Describes the place for a report line. */
export function describeUpperPlace(/** @type {{kind: UpperFs, mount: string | null}} */ p) {
  if (p.kind === "data") return "uppers and work dirs on the data set's filesystem, next to the lowers";
  return `uppers and work dirs on a tmpfs mounted for the run (${p.mount ?? "options unknown"}); lowers on the data set's filesystem`;
}
