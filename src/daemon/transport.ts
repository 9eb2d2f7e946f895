/**
 * What a mount session needs of a FUSE transport: mount a union core on a mount point and serve
 * it until the mount goes away. The session owns everything else (the layer stack, locks, the
 * daemon record, watching for an unmount, signals), so a transport speaking /dev/fuse itself
 * can replace fuse-native without touching it.
 */
import type { Logger } from "../errors.js";
import type { DataCopyMode } from "../union/copy-up.js";
import type { UnionFs } from "../union/union-fs.js";

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

export interface Transport {
  /** how the core copies a copy-up's data where this transport runs it (see DataCopyMode) */
  readonly dataCopy: DataCopyMode;
  /** how many nodes the core keeps that the kernel holds no reference to (see UnionOptions) */
  readonly cachedNodes?: number;
  /**
   * Mounts `fs` on `mountpoint` and serves it; resolves once the mount is live, with the
   * transport's handle on it, which the session holds for as long as it serves.
   */
  mount(fs: UnionFs, mountpoint: string, options: TransportMountOptions): Promise<ServedMount>;
}
