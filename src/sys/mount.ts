/**
 * mount(2) and umount2(2) for the runner and for tests (root, or CAP_SYS_ADMIN in the mount's
 * user namespace). The store never mounts: it only describes mounts.
 *
 * `data` is the filesystem-specific option string (e.g. "lowerdir=...,upperdir=..."), or null.
 * Flags are the kernel's MS_* / MNT_* bits; the common ones are exported here.
 */
import { check, cpath, libc, type PathLike } from "./libc.js";

export const MNT_FORCE = 1;
export const MNT_DETACH = 2;
export const MNT_EXPIRE = 4;
export const UMOUNT_NOFOLLOW = 8;

export const MS_RDONLY = 0x1;
export const MS_NOSUID = 0x2;
export const MS_NODEV = 0x4;
export const MS_NOEXEC = 0x8;
export const MS_REMOUNT = 0x20;
export const MS_BIND = 0x1000;
export const MS_MOVE = 0x2000;
export const MS_REC = 0x4000;
export const MS_PRIVATE = 0x40000;
export const MS_SLAVE = 0x80000;
export const MS_SHARED = 0x100000;

type CStr = string | Buffer;
const mountFn = libc.func(
  "int mount(const char *source, const char *target, const char *fstype, unsigned long flags, const void *data)",
) as (source: CStr, target: CStr, fstype: CStr, flags: number, data: Buffer | null) => number;
const umount2Fn = libc.func("int umount2(const char *target, int flags)") as (target: CStr, flags: number) => number;

export function mount(source: PathLike, target: PathLike, fstype: string, flags: number, data: string | null): void {
  const opts = data === null ? null : Buffer.from(`${data}\0`, "utf8");
  const ret = mountFn(cpath(source, "mount"), cpath(target, "mount"), cpath(fstype, "mount"), flags, opts);
  check(ret, "mount", target);
}

export function umount2(target: PathLike, flags: number): void {
  check(umount2Fn(cpath(target, "umount2"), flags), "umount2", target);
}
