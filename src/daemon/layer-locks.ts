/**
 * A serving daemon announces which directories it uses with flocks held for its lifetime (the
 * kernel drops them when it exits, however it exits): exclusive on the upper, so a second
 * mount of the same upper is refused as kernel overlayfs refuses it, and shared on each lower,
 * so the layer store can tell a layer or container in use from one it may delete.
 */
import { closeSync, constants as fsc, openSync } from "node:fs";
import { UserError } from "../errors.js";
import { tryLockExclusive, tryLockShared } from "../sys/flock.js";
import type { LayerStack } from "../union/layer.js";

/**
 * Takes the locks, or none of them: returns their release (closing an fd drops its flock), for
 * a session that fails before it serves.
 */
export function holdLayerLocks(stack: LayerStack): () => void {
  const fds: number[] = [];
  const release = () => {
    for (const fd of fds.splice(0)) closeSync(fd);
  };
  const lock = (at: string, take: (fd: number) => boolean, refusal: string) => {
    const fd = openSync(at, fsc.O_RDONLY | fsc.O_DIRECTORY);
    fds.push(fd);
    if (!take(fd)) throw new UserError(refusal);
  };
  try {
    const { upper } = stack;
    if (upper !== null) {
      lock(upper.at, tryLockExclusive, `upper directory ${upper.root} is in use by another unionfs mount`);
    }
    for (const lower of stack.lowers) {
      lock(lower.at, tryLockShared, `lower directory ${lower.root} is being changed or removed`);
    }
  } catch (e) {
    release();
    throw e;
  }
  return release;
}
