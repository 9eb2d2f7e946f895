/**
 * Which lower directories merge at a path, and the merged listing of a directory: overlayfs's
 * lookup over a stack of layers, including redirects in lower layers (a redirected directory's
 * content lives at its old path in the layers below it), in bytes.
 *
 * Lookup follows overlayfs, layers top-down: a whiteout ends the search; a non-directory ends
 * it (and is the answer only if nothing above was a directory); a directory joins the stack; an
 * opaque directory ends the search after joining; a directory with a redirect sends the layers
 * below it elsewhere: an absolute one to its path from their roots, a relative one to the old
 * name in the same parent's lower directories. Layer roots always merge. Lists are topmost first.
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

/**
 * A directory of the merged view: its upper copy, if any, and the lower directories below it,
 * which are also where its children's relative redirects are looked up.
 */
export interface MergedDir {
  readonly upper: { readonly path: Buffer; readonly flags: DirFlags } | null;
  readonly stack: readonly StackDir[];
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
 * Looks `name` up below the directories of `stack`, the parent's lower directories: a relative
 * redirect renames the child for the entries below the layer that carries it (the same parent
 * in those layers, as overlayfs's ovl_lookup looks the old name up in the parent's lower stack);
 * an absolute one sends the layers below to its path from their roots.
 */
export function lookupChild(lowers: readonly Buffer[], stack: readonly StackDir[], name: Buffer): Lookup {
  let top: DirProbe | null = null;
  const found: StackDir[] = [];
  let wanted = name;
  for (const dir of stack) {
    const p = probeEntry(dir.path, wanted, dir.flags);
    if (p.kind === "none") continue;
    if (p.kind === "whiteout") break;
    if (p.kind === "other") {
      if (top === null) return p;
      break; // below a directory only directories merge
    }
    top ??= p;
    found.push({ layer: dir.layer, path: p.path, flags: p.flags });
    if (p.flags.opaque) break;
    const redirect = p.flags.redirect === null ? null : parseRedirect(p.flags.redirect);
    if (redirect === null) continue;
    if (redirect.absolute) {
      found.push(...stackAt(lowers, dir.layer + 1, redirect.parts));
      break;
    }
    wanted = redirect.parts[0] as Buffer;
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
  for (const name of path) {
    const found = lookupChild(lowers, stack, name);
    if (found.kind !== "dir") return [];
    stack = [...found.stack];
  }
  return stack;
}

/**
 * The merged directory an upper directory `probe`, child `name` of `parent`, stands for: an
 * absolute redirect takes the lowers at its path from the roots; a relative one (or none)
 * takes what the parent's lower directories hold at the old name (or this one).
 */
export function upperChildDir(lowers: readonly Buffer[], parent: MergedDir, name: Buffer, probe: DirProbe): MergedDir {
  const upper = { path: probe.path, flags: probe.flags };
  if (probe.flags.opaque) return { upper, stack: [] };
  const redirect = probe.flags.redirect === null ? null : parseRedirect(probe.flags.redirect);
  if (redirect?.absolute) return { upper, stack: stackAt(lowers, 0, redirect.parts) };
  const wanted = redirect === null ? name : (redirect.parts[0] as Buffer);
  const below = parent.stack.length === 0 ? NONE : lookupChild(lowers, parent.stack, wanted);
  return { upper, stack: below.kind === "dir" ? below.stack : [] };
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
      const below = lookupChild(lowers, dir.stack, name);
      if (below.kind === "other") out.push({ name, path: below.path, stat: below.stat, dir: null });
      if (below.kind === "dir") {
        out.push({ name, path: below.path, stat: below.stat, dir: { upper: null, stack: below.stack } });
      }
    }
  }
  return out;
}
