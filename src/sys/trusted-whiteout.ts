/**
 * Whether overlayfs's own encoding can be written in a directory, found out by writing it: the
 * privilege, the kernel version and the filesystem all have a say, and only trying asks them all.
 */
import { constants as fsc, rmSync } from "node:fs";
import { mknod } from "./mknod.js";
import { lsetxattr } from "./xattr.js";

/**
 * Makes, at `freePath` (a name that does not exist, in the directory that will hold such things),
 * a character device 0/0 (any user since Linux 5.8, CAP_MKNOD before) carrying a trusted.* xattr
 * (CAP_SYS_ADMIN over the host, and a filesystem that stores them), and removes it again. The
 * device alone is no answer: on a current kernel any user may make it.
 */
export function probeTrustedWhiteout(freePath: string): boolean {
  try {
    mknod(freePath, fsc.S_IFCHR, 0);
  } catch {
    return false;
  }
  try {
    lsetxattr(freePath, "trusted.probe", Buffer.alloc(0));
    return true;
  } catch {
    return false;
  } finally {
    rmSync(freePath, { force: true });
  }
}
