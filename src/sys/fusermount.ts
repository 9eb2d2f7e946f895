/**
 * FUSE mounts for a process that may not mount(2) itself, through the setuid fusermount3 helper,
 * as libfuse does it (lib/mount.c: fuse_mount_fusermount, fuse_kern_unmount).
 *
 * - Mount: a socketpair; `fusermount3 -o OPTIONS -- MOUNTPOINT` runs with one end as an
 *   inherited fd that `_FUSE_COMMFD` names. It opens /dev/fuse, checks the options against what
 *   an unprivileged user may ask for (allow_other needs `user_allow_other` in /etc/fuse.conf),
 *   adds fd=, rootmode=, user_id= and group_id= itself, mounts, and sends the /dev/fuse fd back
 *   over the socket (SCM_RIGHTS) before it exits. The caller then answers INIT on that fd.
 * - Unmount: `fusermount3 -u [-z]`, which unmounts only the caller's own FUSE mounts.
 *
 * fusermount (libfuse2's name for the helper, used by fuse-native) unmounts just as well, so it
 * is the fallback for unmounting.
 */
import { execFile, type SpawnSyncReturns, spawnSync } from "node:child_process";
import { accessSync, closeSync, constants as fsc } from "node:fs";
import { delimiter, join } from "node:path";
import { promisify } from "node:util";
import { FsError } from "../errors.js";
import { receiveFd, socketPair } from "./unix-socket.js";

const run = promisify(execFile);

const COMMFD_ENV = "_FUSE_COMMFD";
/** the child's fd number for its socket end: the entry after stdin, stdout and stderr */
const CHILD_COMMFD = 3;

/**
 * The helper's path: libfuse tries the directory it was built for (/usr/bin or /bin) before
 * PATH, so a PATH entry cannot stand in for a setuid program that is there; null if none is.
 */
export function findFusermount(name: "fusermount3" | "fusermount" = "fusermount3"): string | null {
  for (const dir of ["/usr/bin", "/bin", ...(process.env.PATH ?? "").split(delimiter)]) {
    if (dir.length === 0) continue;
    try {
      accessSync(join(dir, name), fsc.X_OK);
      return join(dir, name);
    } catch {}
  }
  return null;
}

/**
 * Mounts /dev/fuse on `mountpoint` through fusermount3 with `options` (mount(8) style: ro,
 * nosuid, fsname=..., default_permissions, ...) and returns the session's fd, close-on-exec.
 * What fusermount3 refuses becomes an Error with its message, one line.
 */
export function mountWithFusermount(mountpoint: string, options: readonly string[]): number {
  const helper = findFusermount("fusermount3");
  if (helper === null) throw new Error("fusermount3 not found (apt-get install fuse3)");
  const [ours, theirs] = socketPair();
  try {
    let result: SpawnSyncReturns<string>;
    try {
      result = spawnSync(helper, ["-o", options.join(","), "--", mountpoint], {
        // its messages start with its argv[0]: the name, as under libfuse, not our path to it
        argv0: "fusermount3",
        stdio: ["ignore", "ignore", "pipe", theirs],
        env: { ...process.env, [COMMFD_ENV]: String(CHILD_COMMFD) },
        encoding: "utf8",
      });
    } finally {
      // Only fusermount3 may hold this end now: once it has exited, a read on ours ends (EOF)
      // instead of waiting for a sender that will never come.
      closeSync(theirs);
    }
    if (result.error !== undefined) throw result.error;
    // A message sent before fusermount3 exited waits in the socket, fd and all.
    const fd = receiveFd(ours);
    if (result.status === 0 && fd !== null) return fd;
    if (fd !== null) closeSync(fd);
    throw new Error(failure(result));
  } finally {
    closeSync(ours);
  }
}

/** fusermount3's complaint, as one line. */
function failure(result: SpawnSyncReturns<string>): string {
  const said = result.stderr
    .split("\n")
    .map((l) => l.trim())
    .filter((l) => l.length > 0)
    .join("; ");
  if (said.length > 0) return said;
  if (result.signal !== null) return `fusermount3 was killed by ${result.signal}`;
  if (result.status === 0) return "fusermount3 exited without passing back the /dev/fuse fd";
  return `fusermount3 failed with exit code ${result.status}`;
}

/**
 * Unmounts a FUSE mount of this user's through fusermount3 (or fusermount); `lazy` detaches it
 * even while busy. A busy mount is EBUSY, any other refusal EPERM with the helper's message.
 */
export async function unmountWithFusermount(mountpoint: string, lazy: boolean): Promise<void> {
  const helper = findFusermount("fusermount3") ?? findFusermount("fusermount");
  if (helper === null) throw new FsError("ENOENT", "umount", mountpoint, "fusermount3 not found");
  try {
    await run(helper, lazy ? ["-u", "-z", "--", mountpoint] : ["-u", "--", mountpoint]);
  } catch (e) {
    const stderr = String((e as { stderr?: unknown }).stderr ?? "");
    if (stderr.includes("busy")) throw new FsError("EBUSY", "umount", mountpoint);
    throw new FsError("EPERM", "umount", mountpoint, stderr.trim());
  }
}
