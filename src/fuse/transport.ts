/**
 * The fuse-native transport (libfuse 2.9, the fallback): the union core behind the binding's
 * path-based handlers, on the event loop. Copy-up data is staged off the loop (the core's
 * "staged" DataCopyMode), since every request shares that one thread. It has the shape of
 * src/daemon's Transport (checked by the registry there, src/daemon/transports.ts), without
 * importing it: imports point down, and the session sits above the transports.
 */
import type { Logger } from "../errors.js";
import { UnionFs, type UnionSpec } from "../union/union-fs.js";
import { makeOps } from "./adapter.js";
import { type MountOptions, mountAsync, UnionFuse } from "./native-mount.js";

/** Lower layers never change and the upper changes only through the mount: cache for long. */
const CACHE_TIMEOUT_S = 86400;

export type FuseNativeMountOptions = Omit<MountOptions, "cacheTimeout" | "fsname"> & { log: Logger };

/**
 * libfuse 2.9 never forgets into the core (it keeps its own references), so every node is a
 * cache entry; a listing and the stats that follow it should find theirs
 */
const CACHED_NODES = 65_536;

export const fuseNativeTransport = {
  /** Mounts and serves; the binding object it returns must be kept alive while it serves. */
  async mount(spec: UnionSpec, mountpoint: string, options: FuseNativeMountOptions): Promise<UnionFuse> {
    const fs = UnionFs.open(spec, { log: options.log, dataCopy: "staged", cachedNodes: CACHED_NODES });
    try {
      return await serve(fs, mountpoint, options);
    } catch (e) {
      fs.close();
      throw e;
    }
  },
} as const;

async function serve(fs: UnionFs, mountpoint: string, options: FuseNativeMountOptions): Promise<UnionFuse> {
  let fuse: UnionFuse | undefined;
  const ops = makeOps(fs, options.log, () => (fuse as UnionFuse).caller);
  fuse = new UnionFuse(mountpoint, ops, {
    readOnly: options.readOnly,
    shared: options.shared,
    cacheTimeout: CACHE_TIMEOUT_S,
    fsname: "unionfs",
    debug: options.debug,
    extra: options.extra,
  });
  await mountAsync(fuse);
  return fuse;
}
