/**
 * What a mount session needs of a FUSE transport: mount a union core on a mount point and serve
 * it until the mount goes away. The session owns everything else (the layer stack, locks, the
 * daemon record, watching for an unmount, signals), so a transport speaking /dev/fuse itself
 * can replace fuse-native without touching it.
 */
import type { Logger } from "../errors.js";
import type { UnionSpec } from "../union/union-fs.js";

export interface TransportMountOptions {
  /** a mount without an upper: the kernel refuses writes itself */
  readOnly: boolean;
  /** allow_other + default_permissions: for a daemon that may mount for every user */
  shared: boolean;
  /** log every request */
  debug: boolean;
  /** mount options given by the user (nosuid, nodev, noexec, ...) */
  extra: readonly string[];
  log: Logger;
}

/** Whatever a transport needs kept alive while it serves (e.g. its binding object). */
export type ServedMount = object;

/**
 * A served mount whose transport learns itself when the mount is gone (its reader gets ENODEV
 * at the unmount): the session then ends at once instead of noticing at its next look at the
 * mount table.
 */
export interface SelfEndingMount {
  /** resolves once nothing serves the mount any more */
  readonly ended: Promise<void>;
}

export function endsItself(served: ServedMount): served is SelfEndingMount {
  return "ended" in served && served.ended instanceof Promise;
}

export interface Transport {
  /**
   * Mounts the prepared stack on `mountpoint` and serves it, opening the union core where it
   * runs it (`UnionFs.open`: on the event loop, or one per worker thread); resolves once the
   * mount is live, with the transport's handle on it, which the session holds for as long as
   * it serves. On failure it closes whatever it opened.
   */
  mount(spec: UnionSpec, mountpoint: string, options: TransportMountOptions): Promise<ServedMount>;
}
