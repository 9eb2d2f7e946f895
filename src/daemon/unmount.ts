/**
 * Unmounting a FUSE mount: directly with umount2 where the process may, through fusermount
 * otherwise.
 * A busy mount is reported as EBUSY unless a lazy detach is asked for.
 */
import { execFile } from "node:child_process";
import { promisify } from "node:util";
import { FsError, hasCode } from "../errors.js";
import { MNT_DETACH, umount2 } from "../sys/mount.js";
import { mayMountDirectly } from "../sys/privilege.js";

const run = promisify(execFile);

export async function unmountPath(mountpoint: string, lazy: boolean): Promise<void> {
  if (mayMountDirectly()) {
    umount2(mountpoint, lazy ? MNT_DETACH : 0);
    return;
  }
  try {
    await run("fusermount", lazy ? ["-u", "-z", "--", mountpoint] : ["-u", "--", mountpoint]);
  } catch (e) {
    const stderr = String((e as { stderr?: unknown }).stderr ?? "");
    if (stderr.includes("busy")) throw new FsError("EBUSY", "umount", mountpoint);
    throw new FsError("EPERM", "umount", mountpoint, stderr.trim());
  }
}

/** Unmounts; a busy mount is detached lazily so the daemon can still go away. */
export async function unmountOrDetach(mountpoint: string): Promise<void> {
  try {
    await unmountPath(mountpoint, false);
  } catch (e) {
    if (!hasCode(e, "EBUSY")) throw e;
    await unmountPath(mountpoint, true);
  }
}
