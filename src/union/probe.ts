/**
 * What one layer says about one name, in the form the union's lookup caches: src/layers reads
 * the layer (every whiteout and opaque encoding, redirects, xattr whiteouts); this keeps of its
 * answer what a lookup needs, without the path (lower probes are cached by the hundred
 * thousand) and with the redirect parsed into byte-string components.
 *
 * Never follows a symlink: the object is lstat'ed, and its parent was itself reached through
 * probes that only descend into real directories.
 *
 * Probes are synchronous system calls. They read metadata the kernel almost always has cached,
 * where a synchronous lstat costs ~2 µs and the same call through fs.promises' thread pool
 * 57–77 µs (bench/micro/probe.mjs); a lookup through N layers makes up to 2N of them in a row.
 * Synchronous probes are also what the worker-thread transport of DESIGN.md will call.
 */
import type { BigIntStats } from "node:fs";
import { OverlayKey } from "../format/overlay-xattr.js";
import { parseRedirect } from "../layers/merge.js";
import { nameKey, overlayValue, probeEntry as probeLayer } from "../layers/probe.js";
import type { ByteName } from "./layer.js";

export type Probe =
  | { readonly kind: "none" }
  | { readonly kind: "whiteout" }
  | {
      readonly kind: "dir";
      readonly stat: BigIntStats;
      readonly opaque: boolean;
      /** overlay.redirect, validated: null when absent or refused (parseRedirect) */
      readonly redirect: DirRedirect | null;
      /** children that are empty files with an overlay.whiteout xattr are whiteouts */
      readonly xwhiteouts: boolean;
    }
  | { readonly kind: "other"; readonly stat: BigIntStats };

/** A directory's overlay.redirect: a path from the lower roots, or one name in the same parent. */
export interface DirRedirect {
  readonly absolute: boolean;
  /** byte strings; exactly one for a relative redirect */
  readonly parts: readonly ByteName[];
}

const PLAIN_DIR = { xwhiteouts: false };
const XWHITEOUTS_DIR = { xwhiteouts: true };

/** Probes `name` in the layer directory at `dir`; `xwhiteouts` comes from the parent's probe. */
export function probeEntry(dir: Buffer, name: ByteName, xwhiteouts: boolean): Probe {
  const p = probeLayer(dir, Buffer.from(name, "latin1"), xwhiteouts ? XWHITEOUTS_DIR : PLAIN_DIR);
  if (p.kind === "other") return { kind: "other", stat: p.stat };
  if (p.kind !== "dir") return p;
  const { opaque, redirect, xwhiteouts: holds } = p.flags;
  return { kind: "dir", stat: p.stat, opaque, redirect: parseDirRedirect(redirect), xwhiteouts: holds };
}

/** An overlay.redirect value as components; null when absent or refused (parseRedirect). */
function parseDirRedirect(value: Buffer | null): DirRedirect | null {
  const parsed = value === null ? null : parseRedirect(value);
  return parsed === null ? null : { absolute: parsed.absolute, parts: parsed.parts.map(nameKey) };
}

/** The overlay.redirect of the directory at `path`, null when it has none (or a refused one). */
export function redirectOf(path: Buffer): DirRedirect | null {
  return parseDirRedirect(overlayValue(path, OverlayKey.redirect));
}
