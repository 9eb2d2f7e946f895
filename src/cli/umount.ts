/**
 * `unionfs umount MOUNTPOINT`: unmounts, then waits until the daemon that served the mount has
 * exited, so the layer directories can be reused as soon as this returns. A busy mount is an
 * error (nothing is detached behind the user's back).
 */

import { readDaemonRecord } from "../daemon/runtime-state.js";
import { unmountPath } from "../daemon/unmount.js";
import { hasCode, UserError } from "../errors.js";
import { canonicalMountpoint, findMount } from "../sys/mountinfo.js";
import { isAlive } from "../sys/process-watch.js";

const EXIT_WAIT_MS = 10_000;

async function waitForExit(pid: number): Promise<boolean> {
  const deadline = Date.now() + EXIT_WAIT_MS;
  while (Date.now() < deadline) {
    if (!isAlive(pid)) return true;
    await new Promise((r) => setTimeout(r, 10));
  }
  return !isAlive(pid);
}

export async function runUmount(path: string, lazy: boolean): Promise<number> {
  let mountpoint: string;
  try {
    mountpoint = await canonicalMountpoint(path);
  } catch (e) {
    // A dead FUSE mount cannot be stat'ed (ENOTCONN) but can still be unmounted.
    if (!hasCode(e, "ENOTCONN")) throw new UserError(`${path} does not exist`);
    mountpoint = path;
  }
  const entry = await findMount(mountpoint);
  if (entry === null) throw new UserError(`${path} is not mounted`);
  if (!entry.fstype.startsWith("fuse")) throw new UserError(`${path} is not a unionfs mount (${entry.fstype})`);
  const record = await readDaemonRecord(mountpoint);
  try {
    await unmountPath(mountpoint, lazy);
  } catch (e) {
    if (hasCode(e, "EBUSY"))
      throw new UserError(`${path} is busy (files are open or a process uses it as its directory)`);
    throw new UserError(`cannot unmount ${path}: ${e instanceof Error ? e.message : String(e)}`);
  }
  if (record !== null && isAlive(record.pid)) {
    process.kill(record.pid, "SIGTERM");
    if (!(await waitForExit(record.pid)))
      throw new UserError(`unmounted ${path}, but daemon ${record.pid} did not exit`);
  }
  return 0;
}
