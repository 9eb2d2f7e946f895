/**
 * syncfs(2): flush every dirty inode and page of the filesystem holding `fd` in one call.
 *
 * The layer store makes a freshly extracted layer durable before renaming it into place; one
 * syncfs costs one journal commit, where an fsync per extracted file costs thousands.
 */
import { check, libc } from "./libc.js";

const syncfsFn = libc.func("int syncfs(int fd)") as (fd: number) => number;

export function syncfs(fd: number): void {
  check(syncfsFn(fd), "syncfs");
}
