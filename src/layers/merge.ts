/**
 * Which lower directories merge at a path, and the merged listing of a directory: overlayfs's
 * lookup over a stack of layers, including redirects in lower layers (a redirected directory's
 * content lives at its old path in the layers below it), in bytes.
 *
 * Lookup follows overlayfs, layers top-down: a whiteout ends the search; a non-directory ends
 * it (and is the answer only if nothing above was a directory); a directory joins the stack; an
 * opaque directory ends the search after joining; a directory with a redirect sends the layers
 * below it to the redirect's path. Layer roots always merge. Lists are topmost first.
 */
import type { BigIntStats } from "node:fs";
import { readdirSync } from "node:fs";
import {
  type DirFlags,
  type DirProbe,
  isMetaBytes,
  listLayerDir,
  NONE,
  nameKey,
  type Probe,
  probeEntry,
  readDirFlags,
} from "./probe.js";

/** One lower directory of a merge: which layer (index into the lowers) and where. */
export interface StackDir {
  readonly layer: number;
  readonly path: Buffer;
  readonly flags: DirFlags;
}

/** A directory of the merged view: its upper copy, if any, and the lower directories below it. */
export interface MergedDir {
  readonly upper: { readonly path: Buffer; readonly flags: DirFlags } | null;
  readonly stack: readonly StackDir[];
  /** its path in the lower layers: where relative redirects of its children start from */
  readonly lowerPath: readonly Buffer[];
}

/** One child of a merged directory; `dir` is set for directories. */
export interface MergedChild {
  readonly name: Buffer;
  readonly path: Buffer;
  readonly stat: BigIntStats;
  readonly dir: MergedDir | null;
}

export type Lookup =
  | { readonly kind: "none" }
  | Extract<Probe, { kind: "other" }>
  | (DirProbe & { readonly stack: readonly StackDir[] });

/** An overlay.redirect value as overlayfs accepts it: a path from the layer roots, or one name. */
export interface Redirect {
  readonly absolute: boolean;
  /** the path's components; exactly one for a relative redirect */
  readonly parts: readonly Buffer[];
}

const SLASH = 0x2f;
const DOT = 0x2e;

/**
 * Parses an overlay.redirect value (untrusted: it comes from a layer). Null for what overlayfs
 * refuses: an empty value, an empty component ("/", "a//b", a trailing "/"), a relative value
 * of more than one component, and "." or ".." or a NUL byte in a component (the kernel's name
 * lookup refuses those). A refused value is treated as no redirect, so a lookup never leaves
 * the layer roots.
 */
export function parseRedirect(value: Buffer): Redirect | null {
  const absolute = value[0] === SLASH;
  const parts: Buffer[] = [];
  let start = absolute ? 1 : 0;
  for (let i = start; i <= value.length; i++) {
    if (i < value.length && value[i] !== SLASH) continue;
    const part = value.subarray(start, i);
    if (part.length === 0 || part.includes(0) || isDotName(part)) return null;
    parts.push(part);
    start = i + 1;
  }
  if (!absolute && parts.length !== 1) return null;
  return { absolute, parts };
}

function isDotName(name: Buffer): boolean {
  return name[0] === DOT && (name.length === 1 || (name.length === 2 && name[1] === DOT));
}

/**
 * A redirect's path components: absolute from the layer root, else relative to the parent;
 * null for a value parseRedirect refuses (then there is no redirect).
 */
export function resolveRedirect(redirect: Buffer, parent: readonly Buffer[]): Buffer[] | null {
  const parsed = parseRedirect(redirect);
  if (parsed === null) return null;
  return parsed.absolute ? [...parsed.parts] : [...parent, ...parsed.parts];
}

/** Looks `name` up below the directories of `stack`; `path` is the child's own lower path. */
export function lookupChild(
  lowers: readonly Buffer[],
  stack: readonly StackDir[],
  name: Buffer,
  path: readonly Buffer[],
): Lookup {
  let top: DirProbe | null = null;
  const found: StackDir[] = [];
  for (const dir of stack) {
    const p = probeEntry(dir.path, name, dir.flags);
    if (p.kind === "none") continue;
    if (p.kind === "whiteout") break;
    if (p.kind === "other") {
      if (top === null) return p;
      break; // below a directory only directories merge
    }
    top ??= p;
    found.push({ layer: dir.layer, path: p.path, flags: p.flags });
    if (p.flags.opaque) break;
    const target = p.flags.redirect === null ? null : resolveRedirect(p.flags.redirect, path.slice(0, -1));
    if (target !== null) {
      found.push(...stackAt(lowers, dir.layer + 1, target));
      break;
    }
  }
  return top === null ? NONE : { ...top, stack: found };
}

/** The lower directories (from layer `from` down) that merge at `path`; [] if it is no directory. */
export function stackAt(lowers: readonly Buffer[], from: number, path: readonly Buffer[]): StackDir[] {
  let stack: StackDir[] = [];
  for (let layer = from; layer < lowers.length; layer++) {
    const root = lowers[layer] as Buffer;
    stack.push({ layer, path: root, flags: { ...readDirFlags(root), opaque: false, redirect: null } });
  }
  for (const [i, name] of path.entries()) {
    const found = lookupChild(lowers, stack, name, path.slice(0, i + 1));
    if (found.kind !== "dir") return [];
    stack = [...found.stack];
  }
  return stack;
}

/** The merged directory an upper directory `probe`, child `name` of `parent`, stands for. */
export function upperChildDir(lowers: readonly Buffer[], parent: MergedDir, name: Buffer, probe: DirProbe): MergedDir {
  const upper = { path: probe.path, flags: probe.flags };
  const path = [...parent.lowerPath, name];
  if (probe.flags.opaque) return { upper, stack: [], lowerPath: path };
  const source = probe.flags.redirect === null ? null : resolveRedirect(probe.flags.redirect, parent.lowerPath);
  if (source !== null) return { upper, stack: stackAt(lowers, 0, source), lowerPath: source };
  const below = parent.stack.length === 0 ? NONE : lookupChild(lowers, parent.stack, name, path);
  return { upper, stack: below.kind === "dir" ? below.stack : [], lowerPath: path };
}

/** The children of a merged directory, sorted bytewise by name: what a mount would list. */
export function mergedChildren(lowers: readonly Buffer[], dir: MergedDir): MergedChild[] {
  const upper = dir.upper === null ? [] : listLayerDir(dir.upper.path, dir.upper.flags);
  const inUpper = new Map(upper.map((c) => [nameKey(c.name), c.probe]));
  const names = new Map<string, Buffer>();
  for (const c of upper) if (c.probe.kind !== "whiteout") names.set(nameKey(c.name), c.name);
  for (const s of dir.stack) {
    for (const name of readdirSync(s.path, { encoding: "buffer" })) {
      if (!isMetaBytes(name)) names.set(nameKey(name), name);
    }
  }
  const out: MergedChild[] = [];
  for (const name of [...names.values()].sort(Buffer.compare)) {
    const mine = inUpper.get(nameKey(name));
    if (mine?.kind === "whiteout") continue;
    if (mine?.kind === "other") out.push({ name, path: mine.path, stat: mine.stat, dir: null });
    else if (mine?.kind === "dir") {
      out.push({ name, path: mine.path, stat: mine.stat, dir: upperChildDir(lowers, dir, name, mine) });
    } else {
      const path = [...dir.lowerPath, name];
      const below = lookupChild(lowers, dir.stack, name, path);
      if (below.kind === "other") out.push({ name, path: below.path, stat: below.stat, dir: null });
      if (below.kind === "dir") {
        const sub = { upper: null, stack: below.stack, lowerPath: path };
        out.push({ name, path: below.path, stat: below.stat, dir: sub });
      }
    }
  }
  return out;
}
