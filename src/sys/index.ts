/**
 * The public face of src/sys: typed wrappers for the libc calls Node lacks. The koffi handle
 * (`libc`) and the errno helpers stay private to this directory so no other layer calls native
 * code directly; `AT_FDCWD` and the `PathLike` type are the shared exceptions.
 */

export * from "./copy.js";
export { AT_FDCWD, type PathLike } from "./libc.js";
export * from "./mknod.js";
export * from "./mount.js";
export * from "./openat2.js";
export * from "./rename.js";
export * from "./spawn.js";
export * from "./xattr.js";
