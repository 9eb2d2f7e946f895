/**
 * A mounted union: builds the layer stack and the union core, mounts it with fuse-native, and
 * keeps serving until the mount goes away (`unionfs umount`, umount(8), fusermount -u) or the
 * daemon is told to stop (SIGINT / SIGTERM), in which case it unmounts first.
 *
 * Node's event loop would otherwise be empty (the binding unrefs its handles), so a timer keeps
 * the process alive; the same timer notices an external unmount.
 */
import { type Logger, UserError } from "../errors.js";
import type { WhiteoutChoice } from "../format/whiteout-style.js";
import { findMount } from "../sys/mountinfo.js";
import { mayMountDirectly } from "../sys/privilege.js";
import { openStack, type StackSpec } from "../union/layer.js";
import { holdLayerLocks } from "../union/layer-locks.js";
import { UnionFs } from "../union/union-fs.js";
import { makeOps } from "./adapter.js";
import { type MountOptions, mountAsync, UnionFuse } from "./native-mount.js";
import { removeDaemonRecord, writeDaemonRecord } from "./runtime-state.js";
import { unmountOrDetach } from "./unmount.js";

export interface ServeSpec {
  stack: StackSpec;
  /** canonical (realpath) mount point, already checked */
  mountpoint: string;
  debug: boolean;
  extraOptions: readonly string[];
  whiteout: WhiteoutChoice;
  /** overlayfs's `volatile`: no syncs (see UnionOptions) */
  volatile: boolean;
  log: Logger;
}

const WATCH_INTERVAL_MS = 200;
/** Lower layers never change and the upper changes only through the mount: cache for long. */
const CACHE_TIMEOUT_S = 86400;

export class Daemon {
  readonly stopped: Promise<void>;
  private finish!: () => void;
  private watch: NodeJS.Timeout | undefined;
  private stopping = false;

  constructor(
    readonly fs: UnionFs,
    readonly fuse: UnionFuse,
    readonly mountpoint: string,
    private readonly log: Logger,
  ) {
    this.stopped = new Promise((resolve) => {
      this.finish = resolve;
    });
  }

  startWatching(): void {
    this.watch = setInterval(() => {
      findMount(this.mountpoint).then(
        (entry) => {
          if (entry === null || !entry.fstype.startsWith("fuse")) this.done();
        },
        (e: unknown) => this.log(`cannot read the mount table: ${String(e)}`),
      );
    }, WATCH_INTERVAL_MS);
  }

  /** Unmounts (lazily if busy) and ends serving. */
  async stop(): Promise<void> {
    if (this.stopping) return this.stopped;
    this.stopping = true;
    try {
      if ((await findMount(this.mountpoint)) !== null) await unmountOrDetach(this.mountpoint);
    } catch (e) {
      this.log(`unmount of ${this.mountpoint} failed: ${e instanceof Error ? e.message : String(e)}`);
    }
    this.done();
    return this.stopped;
  }

  private done(): void {
    if (this.watch !== undefined) clearInterval(this.watch);
    this.watch = undefined;
    removeDaemonRecord(this.mountpoint, process.pid).then(this.finish, this.finish);
  }
}

export async function serve(spec: ServeSpec): Promise<Daemon> {
  const stack = await openStack(spec.stack);
  holdLayerLocks(stack);
  const fs = await UnionFs.create(stack, {
    whiteout: spec.whiteout,
    volatile: spec.volatile,
    log: spec.log,
    // the event loop serves every request: a large copy must not hold it
    dataCopy: "staged",
  });
  const options: MountOptions = {
    readOnly: stack.upper === null,
    // other users may reach the mount where the mount is ours to make, not fusermount's
    shared: mayMountDirectly(),
    cacheTimeout: CACHE_TIMEOUT_S,
    fsname: "unionfs",
    debug: spec.debug,
    extra: spec.extraOptions,
  };
  let fuse: UnionFuse | undefined;
  const ops = makeOps(fs, spec.log, () => (fuse as UnionFuse).caller);
  fuse = new UnionFuse(spec.mountpoint, ops, options);
  try {
    await mountAsync(fuse);
  } catch (e) {
    throw new UserError(`cannot mount on ${spec.mountpoint}: ${e instanceof Error ? e.message : String(e)}`);
  }
  const daemon = new Daemon(fs, fuse, spec.mountpoint, spec.log);
  await writeDaemonRecord({ pid: process.pid, mountpoint: spec.mountpoint });
  daemon.startWatching();
  return daemon;
}
