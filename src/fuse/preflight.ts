/**
 * Checks made before mounting, so that each environmental problem is one clear line instead of
 * a libfuse message or a stack trace: the FUSE device, libfuse2, fusermount for callers that
 * may not mount themselves, and the mount point itself.
 */
import { constants as fsc } from "node:fs";
import { access, type lstat, stat } from "node:fs/promises";
import { dirname } from "node:path";
import { hasCode, UserError } from "../errors.js";
import { findFusermount } from "../sys/fusermount.js";
import { canonicalMountpoint, findMount } from "../sys/mountinfo.js";

const FUSE_MAJOR = 10;
const FUSE_MINOR = 229;

/** `direct`: this process opens the device and mounts itself, rather than fusermount. */
export async function checkFuseDevice(direct: boolean): Promise<void> {
  let st: Awaited<ReturnType<typeof stat>>;
  try {
    st = await stat("/dev/fuse");
  } catch {
    throw new UserError(
      "no FUSE device: /dev/fuse is missing (load the fuse module or pass --device /dev/fuse to the container)",
    );
  }
  const major = Math.floor(st.rdev / 256);
  const minor = st.rdev % 256;
  if (!st.isCharacterDevice() || major !== FUSE_MAJOR || minor !== FUSE_MINOR) {
    throw new UserError("no FUSE device: /dev/fuse is not the FUSE character device 10:229");
  }
  if (direct) {
    try {
      await access("/dev/fuse", fsc.R_OK | fsc.W_OK);
    } catch {
      throw new UserError("no access to /dev/fuse");
    }
  }
}

/** libfuse2 mounts through the setuid fusermount helper where it may not mount itself: it must exist. */
export async function checkFusermount(): Promise<void> {
  if (findFusermount("fusermount") === null) {
    throw new UserError("fusermount not found: a non-root mount needs it (apt-get install fuse3)");
  }
}

/** Loads the fuse-native addon; a missing libfuse.so.2 is reported as such. */
export async function loadFuseBinding(): Promise<void> {
  try {
    await import("fuse-native");
  } catch (e) {
    const message = e instanceof Error ? e.message : String(e);
    if (message.includes("libfuse")) {
      throw new UserError("libfuse2 is not installed or cannot be loaded (apt-get install libfuse2)");
    }
    throw new UserError(`cannot load the FUSE binding: ${message.split("\n")[0]}`);
  }
}

/** The mount point must exist, be a directory, and have nothing mounted on it yet. */
export async function checkMountpoint(path: string): Promise<string> {
  let st: Awaited<ReturnType<typeof lstat>>;
  try {
    st = await stat(path);
  } catch (e) {
    if (hasCode(e, "ENOENT", "ENOTDIR")) throw new UserError(`mountpoint ${path} does not exist`);
    if (hasCode(e, "ENOTCONN"))
      throw new UserError(`mountpoint ${path} is a dead FUSE mount: run 'unionfs umount ${path}' first`);
    throw new UserError(`mountpoint ${path}: ${(e as Error).message}`);
  }
  if (!st.isDirectory()) throw new UserError(`mountpoint ${path} is not a directory`);
  const canonical = await canonicalMountpoint(path);
  const mounted = await findMount(canonical);
  const parent = await stat(dirname(canonical));
  if (mounted !== null || (canonical !== "/" && parent.dev !== st.dev)) {
    throw new UserError(`mountpoint ${path} is busy: ${mounted?.fstype ?? "a filesystem"} is already mounted there`);
  }
  return canonical;
}
