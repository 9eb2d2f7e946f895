/**
 * What this process may do, asked as the questions the code has, not as "is uid 0".
 *
 * uid answers none of them in a user namespace: a process there may be uid 0 and yet unable to
 * write trusted.* xattrs or mount on the host's filesystems, and a process outside may hold
 * capabilities under another uid. So:
 * - What can be tried cheaply in the directory concerned is tried there (trusted-whiteout.ts):
 *   that also answers for the kernel version and the filesystem.
 * - The rest is read once from the effective capability set (/proc/self/status `CapEff`) and
 *   whether this is the initial user namespace (/proc/self/uid_map is the identity map, the
 *   test runc's userns.RunningInUserNS makes). The kernel's `capable()` means "in the initial
 *   user namespace"; `ns_capable()` the process's own, which is what the effective set shows.
 * - uid stays the answer only to "whose directories are mine" (`isRootUser`).
 * No native code here: `unionfs run` asks these at start-up, before anything loads koffi.
 */
import { readFileSync } from "node:fs";

export const CAP_CHOWN = 0;
export const CAP_SYS_ADMIN = 21;
export const CAP_MKNOD = 27;

export interface Privilege {
  /** the effective capability set, bit n for capability n */
  effective: bigint;
  /** false inside a user namespace, where capabilities do not reach the host */
  initialUserNamespace: boolean;
}

/** `CapEff` of a /proc/<pid>/status text; none when the line is missing. */
export function parseEffectiveCapabilities(status: string): bigint {
  const hex = /^CapEff:\s*([0-9a-fA-F]+)\s*$/m.exec(status)?.[1];
  return hex === undefined ? 0n : BigInt(`0x${hex}`);
}

/** The initial user namespace maps all 2^32 ids onto themselves: `0 0 4294967295`. */
export function isInitialUserNamespace(uidMap: string): boolean {
  return uidMap.trim().split(/\s+/).join(" ") === "0 0 4294967295";
}

let cached: Privilege | undefined;

export function readPrivilege(): Privilege {
  cached ??= {
    effective: parseEffectiveCapabilities(readFileSync("/proc/self/status", "utf8")),
    initialUserNamespace: isInitialUserNamespace(readFileSync("/proc/self/uid_map", "utf8")),
  };
  return cached;
}

/** Holds `cap` in its own user namespace (ns_capable). */
export function hasCapability(cap: number, p: Privilege = readPrivilege()): boolean {
  return ((p.effective >> BigInt(cap)) & 1n) === 1n;
}

/**
 * CAP_SYS_ADMIN over the host (capable): trusted.* xattrs, kernel overlayfs with them, mounts and
 * cgroups without a user namespace of its own. What "rootless" means is the absence of this.
 */
export function isHostAdmin(p: Privilege = readPrivilege()): boolean {
  return p.initialUserNamespace && hasCapability(CAP_SYS_ADMIN, p);
}

/**
 * Mounts and unmounts FUSE with mount(2) and umount2(2) itself, rather than through the setuid
 * fusermount (libfuse tries mount(2) first and falls back to it on EPERM).
 */
export function mayMountDirectly(p: Privilege = readPrivilege()): boolean {
  return hasCapability(CAP_SYS_ADMIN, p);
}

/** Gives files to other owners (within the ids its user namespace maps). */
export function mayChown(p: Privilege = readPrivilege()): boolean {
  return hasCapability(CAP_CHOWN, p);
}

/**
 * uid 0: the system's directories (/var/lib, /run) are this user's. Only for choosing default
 * locations; never for what the process may do.
 */
export function isRootUser(): boolean {
  return process.getuid?.() === 0;
}
