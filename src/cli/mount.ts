/**
 * `unionfs mount` (and the fuse-overlayfs form): checks the environment, then serves the mount
 * in the foreground (-f) or in a daemon that this command waits for.
 */
import { resolve } from "node:path";
import type { TransportEntry } from "../daemon/transports.js";
import { UserError } from "../errors.js";
import type { WhiteoutChoice } from "../format/whiteout-style.js";
import { checkFuseDevice, checkMountpoint } from "../fuse/preflight.js";
import { mayMountDirectly } from "../sys/privilege.js";
import { isAlive, watchProcess } from "../sys/process-watch.js";
import { isDaemonChild, reportToParent } from "./daemon-report.js";
import { startDaemon } from "./daemonize.js";

export interface MountRequest {
  lowers: string[];
  upper?: string | undefined;
  work?: string | undefined;
  mountpoint: string;
  foreground: boolean;
  debug: boolean;
  extraOptions: string[];
  whiteout: WhiteoutChoice;
  volatile: boolean;
  /** what serves the mount (`--transport`), resolved by name before anything else is checked */
  transport: TransportEntry;
  /** unmount and exit once this process has exited: a mount that lives only as long as its user */
  exitWith?: number | undefined;
  /** the argv to re-run in a daemon child */
  argv: readonly string[];
}

function warn(message: string): void {
  process.stderr.write(`unionfs: ${message}\n`);
}

export async function runMount(req: MountRequest): Promise<number> {
  // the daemon opens /dev/fuse and mounts itself where it may, else a setuid helper
  // (fusermount for fuse-native, fusermount3 for devfuse; the transport checks for it) does both
  await checkFuseDevice(mayMountDirectly());
  await req.transport.preflight();
  const mountpoint = await checkMountpoint(req.mountpoint);
  // checked up front: the watch would unmount at once, after a mount that looked successful
  if (req.exitWith !== undefined && !isAlive(req.exitWith)) {
    throw new UserError(`--exit-with ${req.exitWith}: no such process`);
  }
  if (!req.foreground && !isDaemonChild()) {
    await startDaemon(req.argv);
    return 0;
  }
  const { startSession } = await import("../daemon/session.js");
  const transport = await req.transport.load();
  const stack = {
    lowers: req.lowers.map((l) => resolve(l)),
    upper: req.upper === undefined ? undefined : resolve(req.upper),
    work: req.work === undefined ? undefined : resolve(req.work),
  };
  // Paths are absolute from here on; a daemon that kept the caller's working directory would
  // keep that filesystem busy for as long as the mount lives.
  if (isDaemonChild()) process.chdir("/");
  // Handlers go in before the mount exists: a signal that arrives as the mount goes live must
  // still unmount, not kill the process and leave a dead mount behind.
  let daemon: Awaited<ReturnType<typeof startSession>> | undefined;
  let stopRequested = false;
  const stop = () => {
    stopRequested = true;
    daemon?.stop().catch(() => {});
  };
  for (const signal of ["SIGINT", "SIGTERM", "SIGHUP"] as const) process.on(signal, stop);
  if (req.exitWith !== undefined) watchProcess(req.exitWith, stop);
  try {
    daemon = await startSession(
      {
        stack,
        mountpoint,
        debug: req.debug,
        extraOptions: req.extraOptions,
        whiteout: req.whiteout,
        volatile: req.volatile,
        log: warn,
      },
      transport,
    );
  } catch (e) {
    if (e instanceof UserError) reportToParent({ error: e.message });
    throw e;
  }
  if (stopRequested) daemon.stop().catch(() => {});
  reportToParent({ ready: true });
  await daemon.stopped;
  return 0;
}
