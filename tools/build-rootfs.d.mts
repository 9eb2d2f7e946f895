/** Types for build-rootfs.mjs, which the runner tests import. */

/** What the rootfs's /etc/hostname says, so a test can tell it from the host's. */
export const ROOTFS_HOSTNAME_FILE: string;
/** Why no rootfs can be built here, or null. */
export function busyboxMissing(): string | null;
/** Builds the rootfs in `dir` (created if needed) and returns `dir`. */
export function buildRootfs(dir: string): string;
