/**
 * For as long as a run lasts it holds a shared flock on each lower directory, as a serving
 * unionfs daemon does (src/union/layer-locks.ts): the layer store then sees the layers as in
 * use and `gc` or `layer rm` leave them alone. A kernel overlay mounted inside the run's own
 * mount namespace would not show up in the store's mount-table check. The kernel drops the
 * locks when the process exits, however it exits.
 */
import { closeSync, constants as fsc, openSync } from "node:fs";
import { tryLockShared } from "../sys/flock.js";

export function holdLowers(lowers: readonly string[]): () => void {
  const fds: number[] = [];
  for (const dir of lowers) {
    let fd: number;
    try {
      fd = openSync(dir, fsc.O_RDONLY | fsc.O_DIRECTORY);
    } catch {
      continue; // a missing or unreadable layer is reported where the root is prepared
    }
    fds.push(fd);
    // a layer being removed right now holds an exclusive lock: the run would fail anyway
    tryLockShared(fd);
  }
  return () => {
    for (const fd of fds) closeSync(fd);
  };
}
