/**
 * Paths into a layer that start at the layer's directory fd (`/proc/self/fd/<fd>/<rel>`), so
 * the kernel resolves them from the directory opened before the mount, as openat(2) would,
 * and never from `/`.
 *
 * A path longer than PATH_MAX cannot be handed to a system call in one piece. Such a `rel` is
 * cut into pieces that fit: each piece but the last is opened (O_PATH) and the next piece
 * starts at that fd, so depth is bounded by nothing but the filesystem. Those directory fds are
 * cached per layer, keyed by their path in the layer; a writable layer's entries are dropped
 * whenever a directory in it is renamed or removed (forgetDeepDirs), since the fd would follow
 * the directory to its new name while the key still names the old one.
 *
 * Callers join one more name onto a directory's path (a `.wh.` whiteout name at the longest),
 * so every path handed out leaves room for that below PATH_MAX. A `rel` is a byte string (one
 * char per byte, see layer.ts), so its length is its length in bytes.
 */
import { closeSync, constants as fsc, openSync } from "node:fs";
import { LRUCache } from "lru-cache";
import { NAME_MAX } from "../path/name.js";

/** PATH_MAX (4096, with the terminating NUL), less "/.wh." and a NAME_MAX name */
const PATH_BYTES = 4095 - 5 - NAME_MAX;
const O_PATH = 0o10000000;

interface LayerFd {
  readonly fd: number;
  readonly at: string;
}

/** layer fd -> (path in the layer -> O_PATH fd of that directory) */
const deepDirs = new Map<number, LRUCache<string, number>>();

/** A path reaching `rel` (relative to the layer root, "" for the root) in `layer`. */
export function layerPath(layer: LayerFd, rel: string): Buffer {
  const path = rel === "" ? layer.at : `${layer.at}/${rel}`;
  return Buffer.from(path.length <= PATH_BYTES ? path : deepPath(layer, rel), "latin1");
}

/** Drops the cached directory fds of a layer (after a directory in it moved or went away). */
export function forgetDeepDirs(layer: LayerFd): void {
  deepDirs.get(layer.fd)?.clear();
  deepDirs.delete(layer.fd);
}

/** A path reaching `rel` through cached directory fds, each piece of it short enough. */
function deepPath(layer: LayerFd, rel: string): string {
  const parts = rel.split("/");
  let cache = deepDirs.get(layer.fd);
  if (cache === undefined) {
    cache = new LRUCache<string, number>({ max: 64, dispose: (fd) => closeSync(fd) });
    deepDirs.set(layer.fd, cache);
  }
  let base = layer.at;
  let from = 0;
  for (;;) {
    let to = from;
    let bytes = base.length;
    for (; to < parts.length; to++) {
      const more = 1 + (parts[to]?.length ?? 0);
      if (bytes + more > PATH_BYTES) break;
      bytes += more;
    }
    const piece = parts.slice(from, to).join("/");
    if (to === parts.length) return `${base}/${piece}`;
    const key = parts.slice(0, to).join("/");
    let fd = cache.get(key);
    if (fd === undefined) {
      fd = openSync(Buffer.from(`${base}/${piece}`, "latin1"), O_PATH | fsc.O_DIRECTORY | fsc.O_NOFOLLOW);
      cache.set(key, fd);
    }
    base = `/proc/self/fd/${fd}`;
    from = to;
  }
}
