/**
 * One lock for the whole store: every command that changes it holds an exclusive flock on
 * `<store>/lock` for its duration, so concurrent `unionfs` invocations queue instead of
 * interleaving. The kernel drops the lock when the holder dies, so a crash never wedges it.
 */
import { closeSync, constants as fsc, openSync } from "node:fs";
import { join } from "node:path";
import { tryLockExclusive, unlock } from "../sys/flock.js";
import { StoreError } from "./store-error.js";

const POLL_MS = 50;
const DEFAULT_TIMEOUT_MS = 10 * 60_000;

export async function withStoreLock<T>(
  root: string,
  fn: () => Promise<T>,
  onWait: () => void = () => {},
  timeoutMs = DEFAULT_TIMEOUT_MS,
): Promise<T> {
  const fd = openSync(join(root, "lock"), fsc.O_RDWR | fsc.O_CREAT, 0o600);
  try {
    const deadline = Date.now() + timeoutMs;
    let waited = false;
    while (!tryLockExclusive(fd)) {
      if (!waited) onWait();
      waited = true;
      if (Date.now() > deadline)
        throw new StoreError("in-use", `the store at ${root} stayed locked by another unionfs`);
      await new Promise((resolve) => setTimeout(resolve, POLL_MS));
    }
    try {
      return await fn();
    } finally {
      unlock(fd);
    }
  } finally {
    closeSync(fd);
  }
}
