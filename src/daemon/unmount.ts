/**
 * Unmounting a FUSE mount: directly with umount2 where the process may, through fusermount
 * otherwise.
 * A busy mount is reported as EBUSY unless a lazy detach is asked for.
 */
import { hasCode } from "../errors.js";
import { unmountWithFusermount } from "../sys/fusermount.js";
import { MNT_DETACH, umount2 } from "../sys/mount.js";
import { mayMountDirectly } from "../sys/privilege.js";

export async function unmountPath(mountpoint: string, lazy: boolean): Promise<void> {
  if (mayMountDirectly()) {
    umount2(mountpoint, lazy ? MNT_DETACH : 0);
    return;
  }
  await unmountWithFusermount(mountpoint, lazy);
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
