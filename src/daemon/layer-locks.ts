/**
 * A serving daemon announces which directories it uses with flocks held for its lifetime (the
 * kernel drops them when it exits, however it exits): exclusive on the upper, so a second
 * mount of the same upper is refused as kernel overlayfs refuses it, and shared on each lower,
 * so the layer store can tell a layer or container in use from one it may delete.
 */
import { constants as fsc, openSync } from "node:fs";
import { UserError } from "../errors.js";
import { tryLockExclusive, tryLockShared } from "../sys/flock.js";
import type { LayerStack } from "../union/layer.js";

export function holdLayerLocks(stack: LayerStack): void {
  if (stack.upper !== null) {
    const fd = openSync(stack.upper.at, fsc.O_RDONLY | fsc.O_DIRECTORY);
    if (!tryLockExclusive(fd)) {
      throw new UserError(`upper directory ${stack.upper.root} is in use by another unionfs mount`);
    }
  }
  for (const lower of stack.lowers) {
    const fd = openSync(lower.at, fsc.O_RDONLY | fsc.O_DIRECTORY);
    if (!tryLockShared(fd)) throw new UserError(`lower directory ${lower.root} is being changed or removed`);
  }
}
