/**
 * A mount session: opens the layer stack, takes the layer locks, builds the union core, has a
 * transport mount it, records the daemon for `unionfs umount`, and keeps serving until the mount
 * goes away (`unionfs umount`, umount(8), fusermount -u) or the session is stopped (SIGINT /
 * SIGTERM reach `stop`), in which case it unmounts first.
 *
 * A transport that learns itself when the mount is gone (SelfEndingMount: devfuse, whose
 * worker threads also keep the process alive) ends the session at once. For any other, Node's
 * event loop would otherwise be empty (a transport may unref its handles), so a timer keeps the
 * process alive; the same timer notices an external unmount.
 */
import { type Logger, UserError } from "../errors.js";
import type { WhiteoutChoice } from "../format/whiteout-style.js";
import { findMount } from "../sys/mountinfo.js";
import { mayMountDirectly } from "../sys/privilege.js";
import { closeStack, type LayerStack, openStack, type StackSpec } from "../union/layer.js";
import { UnionFs, type UnionSpec } from "../union/union-fs.js";
import { holdLayerLocks } from "./layer-locks.js";
import { removeDaemonRecord, writeDaemonRecord } from "./runtime-state.js";
import { endsItself, type ServedMount, type Transport } from "./transport.js";
import { unmountOrDetach } from "./unmount.js";

export interface SessionSpec {
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

export class Session {
  readonly stopped: Promise<void>;
  private finish!: () => void;
  private watch: NodeJS.Timeout | undefined;
  private stopping = false;
  private ended = false;

  constructor(
    readonly mountpoint: string,
    /** the transport's handle on the mount, kept alive for as long as the session serves */
    readonly served: ServedMount,
    private readonly log: Logger,
  ) {
    this.stopped = new Promise((resolve) => {
      this.finish = resolve;
    });
  }

  startWatching(): void {
    if (endsItself(this.served)) {
      // its threads keep the process alive while they serve, and say when they stop
      this.served.ended.then(
        () => this.done(),
        () => this.done(),
      );
      return;
    }
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
    if (this.ended) return;
    this.ended = true;
    if (this.watch !== undefined) clearInterval(this.watch);
    this.watch = undefined;
    removeDaemonRecord(this.mountpoint, process.pid).then(this.finish, this.finish);
  }
}

export async function startSession(spec: SessionSpec, transport: Transport): Promise<Session> {
  const stack = await openStack(spec.stack, spec.mountpoint);
  const { union, releaseLocks } = await lockAndPrepare(stack, spec);
  let served: ServedMount;
  try {
    served = await mountWith(transport, union, spec, stack.upper === null);
  } catch (e) {
    // the transport has closed the core it opened on the stack, and with it the stack's fds
    releaseLocks();
    throw e;
  }
  const session = new Session(spec.mountpoint, served, spec.log);
  await writeDaemonRecord({ pid: process.pid, mountpoint: spec.mountpoint });
  session.startWatching();
  return session;
}

/**
 * Takes the layer locks and readies the core; a failure gives back the locks and the stack's
 * fds, so a caller that goes on (a retry, a test) finds the upper free again.
 */
async function lockAndPrepare(stack: LayerStack, spec: SessionSpec) {
  let releaseLocks = () => {};
  try {
    releaseLocks = holdLayerLocks(stack);
    const union = await UnionFs.prepare(stack, { whiteout: spec.whiteout, volatile: spec.volatile });
    return { union, releaseLocks };
  } catch (e) {
    releaseLocks();
    closeStack(stack);
    throw e;
  }
}

async function mountWith(transport: Transport, union: UnionSpec, spec: SessionSpec, readOnly: boolean) {
  try {
    return await transport.mount(union, spec.mountpoint, {
      readOnly,
      shared: mayMountDirectly(),
      debug: spec.debug,
      extra: spec.extraOptions,
      log: spec.log,
    });
  } catch (e) {
    throw new UserError(`cannot mount on ${spec.mountpoint}: ${e instanceof Error ? e.message : String(e)}`);
  }
}
