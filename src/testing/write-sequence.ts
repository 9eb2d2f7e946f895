/**
 * One differential write sequence: the same seeded random operations applied to kernel
 * overlayfs (the oracle, `redirect_dir=on,index=on,xino=on`) and to unionfs over the same lower
 * layer directories, comparing the outcome of every step and, at the end, the merged views; then
 * the unionfs upper is mounted by kernel overlayfs and that view is compared with the oracle's
 * too. The lowers and the uppers are on the filesystems a layout says (fs-layout.ts).
 *
 * Each sequence gets fresh layers and its own mounts in its own Scratch, cleaned up whatever
 * happens. Operation paths come from the oracle's current view (see random-ops.ts).
 *
 * What the comparison leaves out is listed once, with reasons, in SEQUENCE_IGNORED.
 */
import type { Dirent } from "node:fs";
import { lstat, readdir, readlink } from "node:fs/promises";
import { join } from "node:path";
import { apply, DEFAULT_MTIME } from "./fixture.js";
import { type FsLayout, LayoutDirs, ONE_FS } from "./fs-layout.js";
import { applyOp, formatOp, formatOutcome, type Op, type Outcome } from "./fs-ops.js";
import { mountOverlaySync, mountUnionfs, type TestMount } from "./mounts.js";
import { type EntryType, OpGenerator, type ViewEntry } from "./random-ops.js";
import { Rng } from "./rng.js";
import { Scratch } from "./scratch.js";
import { FIXTURE_MTIMES, GENERATOR_HINTS, sequenceLayers } from "./sequence-layers.js";
import { compareSnapshots, direntConsistency, IGNORED, type NodeRecord, type Snapshot, snapshot } from "./snapshot.js";
import { defaultTransport } from "./transports.js";
import { XINO_ON } from "./xino.js";

/**
 * Everything a write sequence's comparison leaves out, and why: snapshot.ts's IGNORED (atime,
 * ctime, sub-ms times, st_dev, ...) and what comparing two different uppers adds.
 */
export const SEQUENCE_IGNORED = {
  ...IGNORED,
  mtimeOfChangedObjects:
    "objects changed during the run carry the wall-clock time of the change, which differs between the " +
    "two mounts by construction: an mtime is compared exactly when either side shows a time the test " +
    "planted (fixture or explicit utimens, whole ms), else both must merely be recent",
  inoOfNewObjects:
    "objects created during the run get fresh upper inode numbers, which differ between two uppers by " +
    "construction: they are compared as a partition (the same paths share a number on both sides, and " +
    "no new object may take a lower object's number); objects from the lowers must keep their number",
  dotDotDino:
    "kernel overlayfs passes a lower layer's own '..' d_ino through unchanged in a merged directory " +
    "(fs/overlayfs/readdir.c recalculates d_ino only for upper entries), which is neither the parent's " +
    "st_ino nor the same for two dirs of one parent: '..' is left out of the listing comparison, and " +
    "unionfs's '..' is checked against its parent's st_ino instead (direntConsistency)",
  dirSizeAndBlocks:
    "a directory's st_size/st_blocks are its upper directory's and depend on that directory's history " +
    "(ext4 directories never shrink; temp names come and go differently)",
} as const;

// --- mounts ---------------------------------------------------------------------------------

export const KERNEL_OPTIONS = `redirect_dir=on,index=on,${XINO_ON}`;

/** Kernel overlayfs, read-write, registered with the scratch for unmounting. */
export function mountKernel(
  scratch: Scratch,
  lowers: readonly string[],
  upper: string,
  work: string,
  mountpoint: string,
): TestMount {
  return mountOverlaySync(scratch, { lowers, upper, work }, mountpoint, [KERNEL_OPTIONS]);
}

/** The view operations are chosen from: every object below `root`, by lstat. */
export async function listView(root: string): Promise<ViewEntry[]> {
  const out: ViewEntry[] = [{ path: "", type: "dir", size: 0, nlink: 1 }];
  const walk = async (rel: string): Promise<void> => {
    let entries: Dirent[];
    try {
      entries = await readdir(rel === "" ? root : join(root, rel), { withFileTypes: true });
    } catch {
      return;
    }
    for (const e of entries.sort((a, b) => (a.name < b.name ? -1 : 1))) {
      const path = rel === "" ? e.name : `${rel}/${e.name}`;
      const type: EntryType = e.isDirectory() ? "dir" : e.isFile() ? "file" : e.isSymbolicLink() ? "symlink" : "other";
      const st = await lstat(join(root, path));
      const entry: ViewEntry = {
        path,
        type,
        size: type === "file" ? st.size : 0,
        nlink: type === "dir" ? 1 : st.nlink,
      };
      if (type === "symlink") entry.target = await readlink(join(root, path));
      out.push(entry);
      if (type === "dir") await walk(path);
    }
  };
  await walk("");
  return out;
}

// --- normalisation --------------------------------------------------------------------------

/** See SEQUENCE_IGNORED. `planted` holds whole-ms mtimes the test set; `since` the run's start. */
export function normalize(s: Snapshot, planted: ReadonlySet<string>, since: number): Snapshot {
  const byIno = new Map<string, string>();
  for (const [path, rec] of s.nodes) {
    if ("ino" in rec && rec.ino.startsWith("unknown-ino:") && !byIno.has(rec.ino)) byIno.set(rec.ino, `new:${path}`);
  }
  const ino = (v: string) => byIno.get(v) ?? v;
  const time = (ms: string) => (planted.has(ms) ? ms : Number(ms) >= since - 2000 ? "recent" : `old:${ms}`);
  const nodes = new Map<string, NodeRecord | { error: string }>();
  for (const [path, rec] of s.nodes) {
    if (!("type" in rec)) {
      nodes.set(path, rec);
      continue;
    }
    const n: NodeRecord = { ...rec, ino: ino(rec.ino), mtimeMs: time(rec.mtimeMs) };
    if (rec.type === "dir") {
      n.size = "-";
      n.blocks = "-";
    }
    nodes.set(path, n);
  }
  const listings = new Map<string, Snapshot["listings"] extends Map<string, infer V> ? V : never>();
  for (const [d, l] of s.listings) {
    const entries = Array.isArray(l) ? l.filter((e) => e.name !== "..").map((e) => ({ ...e, ino: ino(e.ino) })) : l;
    listings.set(d, entries);
  }
  return { layers: s.layers, nodes, listings };
}

export interface MountPair {
  /** topmost first, shared by both mounts */
  lowers: string[];
  kernel: TestMount;
  unionfs: TestMount;
  kernelUpper: string;
  unionfsUpper: string;
  unionfsWork: string;
}

/**
 * Fresh sequence layers under `scratch`, on the filesystems `layout` says, mounted by kernel
 * overlayfs and by unionfs (served by `transport`, default the run's first).
 */
export async function mountPair(
  scratch: Scratch,
  seed: number,
  layout: FsLayout = ONE_FS,
  transport: string = defaultTransport(),
): Promise<MountPair> {
  const dirs = new LayoutDirs(scratch, layout);
  const lowers = ["l0", "l1", "l2"].map((d) => dirs.lower(d));
  for (const [i, entries] of sequenceLayers(seed).entries()) await apply(lowers[i] as string, entries);
  const [ku, kw] = [dirs.upper("k-upper"), dirs.upper("k-work")];
  const [uu, uw] = [dirs.upper("u-upper"), dirs.upper("u-work")];
  const kernel = mountKernel(scratch, lowers, ku, kw, scratch.mkdir("k-mnt"));
  const unionfs = await mountUnionfs(scratch, { lowers, upper: uu, work: uw }, scratch.mkdir("u-mnt"), { transport });
  return { lowers, kernel, unionfs, kernelUpper: ku, unionfsUpper: uu, unionfsWork: uw };
}

// --- one sequence ---------------------------------------------------------------------------

/**
 * Something unionfs gets wrong today, kept out of the random sequences so they still cover the
 * rest: operations the generator must not pick (`matches`), or differences the comparison must
 * let pass (`hides`), the latter only where the bug cannot be avoided by choosing operations.
 */
export interface KnownGap {
  /** short name, shown where the gap applies */
  name: string;
  /** why it fails today; the issue or bug it waits for */
  reason: string;
  matches?(op: Op, view: readonly ViewEntry[]): boolean;
  hides?(problem: string): boolean;
  /** the transports that have the gap; every one when absent */
  transports?: readonly string[];
}

/** Whether `gap` is one of `transport`'s. */
export function gapApplies(gap: { transports?: readonly string[] }, transport: string): boolean {
  return gap.transports === undefined || gap.transports.includes(transport);
}

export interface SequenceOptions {
  /** names the sequence; also seeds the generator and the fixture's random data */
  seed: number;
  /** how many operations to generate */
  ops: number;
  knownGaps: readonly KnownGap[];
  /** run exactly these operations instead of generated ones (replays, minimisation) */
  script?: readonly Op[];
  /** which filesystems the layers go on (default: all in one) */
  layout?: FsLayout;
  /** what serves the unionfs mount (default: the run's first, see transports.ts) */
  transport?: string;
  /**
   * also compare the views before the first operation (the read side, which every sequence
   * starts from identically apart from one file's random content)
   */
  compareInitial?: boolean;
  /**
   * compare the live unionfs view at the end (default true); false leaves only kernel
   * overlayfs's reading of the upper, for scripts whose live view a known caching bug spoils
   */
  compareLive?: boolean;
}

export interface SequenceReport {
  seed: number;
  /** where the layers were (replays must use the same) */
  layout: FsLayout;
  /** what served the unionfs mount (replays must use the same) */
  transport: string;
  /** one line per step: the op and both outcomes */
  steps: string[];
  /** the operations applied, for replay */
  ops: Op[];
  /** empty when the sequence passed */
  problems: string[];
  /** wall time in ms, split by phase */
  timing: Record<string, number>;
}

const TRIES_PER_STEP = 50;

export async function runSequence(opts: SequenceOptions): Promise<SequenceReport> {
  const layout = opts.layout ?? ONE_FS;
  const transport = opts.transport ?? defaultTransport();
  const report: SequenceReport = { seed: opts.seed, layout, transport, steps: [], ops: [], problems: [], timing: {} };
  const since = Date.now();
  let phase = since;
  const lap = (name: string) => {
    const now = Date.now();
    report.timing[name] = now - phase;
    phase = now;
  };
  const scratch = new Scratch("unionfs-wseq-");
  try {
    const pair = await mountPair(scratch, opts.seed, layout, transport);
    const { lowers, kernel, unionfs } = pair;
    const [kmnt, umnt, uu, uw] = [kernel.mountpoint, unionfs.mountpoint, pair.unionfsUpper, pair.unionfsWork];
    // the upper tells the snapshot how overlayfs numbers the lowers' objects (xino)
    const kernelView = () => snapshot(kmnt, lowers, { upper: pair.kernelUpper });
    const unionfsView = () => snapshot(umnt, lowers, { upper: uu });
    const rmnt = scratch.mkdir("r-mnt");
    lap("mount");

    const planted = new Set([DEFAULT_MTIME, ...FIXTURE_MTIMES].map((s) => String(s * 1000)));
    const compare = async (what: string, k: Snapshot, other: Snapshot, name: string) => {
      const diffs = compareSnapshots(normalize(k, planted, since), normalize(other, planted, since), ["kernel", name]);
      for (const d of diffs) report.problems.push(`${what}: ${d}`);
      if (name === "unionfs") {
        for (const d of direntConsistency(other)) report.problems.push(`${what}: ${name} readdir vs lstat: ${d}`);
      }
    };
    if (opts.compareInitial === true) {
      const k = await kernelView();
      // before any change every object but the root (the upper's own) is a lower object: a
      // number naming none would make the inode comparison vacuous (normalize treats unknown
      // numbers as new objects)
      for (const [path, n] of k.nodes) {
        if (path !== "" && (!("ino" in n) || !/^L\d+:/.test(n.ino))) {
          report.problems.push(`initial view: kernel's ${path || "/"} names no layer object: ${JSON.stringify(n)}`);
        }
      }
      await compare("initial view", k, await unionfsView(), "unionfs");
    }
    lap("initial");

    const rng = new Rng(opts.seed);
    const gen = new OpGenerator(rng, GENERATOR_HINTS);
    let view = await listView(kmnt);
    const count = opts.script?.length ?? opts.ops;
    for (let i = 0; i < count; i++) {
      let op = opts.script?.[i] ?? gen.next(view);
      if (opts.script === undefined) {
        // redraw on a known gap: the same kind first, so gaps do not skew the mix of operations
        const inGap = (o: Op) => opts.knownGaps.some((g) => g.matches?.(o, view) === true);
        for (let t = 0; t < TRIES_PER_STEP && inGap(op); t++) op = gen.next(view, t < 10 ? op.kind : undefined);
        if (inGap(op)) continue;
      }
      report.ops.push(op);
      if (op.kind === "utimens") planted.add(String(op.mtimeMs));
      const [k, u] = await Promise.all([applyOp(kmnt, op), applyOp(umnt, op)]);
      report.steps.push(stepLine(i, op, k, u));
      if (k.code === "EXDEV" || u.code === "EXDEV") report.problems.push(`step ${i}: EXDEV (${formatOp(op)})`);
      if (formatOutcome(k) !== formatOutcome(u)) {
        report.problems.push(`step ${i}: ${formatOp(op)}: kernel ${formatOutcome(k)}, unionfs ${formatOutcome(u)}`);
        break; // later steps would only repeat the divergence
      }
      const next = await listView(kmnt);
      gen.observe(view, next);
      view = next;
    }
    lap("ops");

    const kFinal = await kernelView();
    if (opts.compareLive !== false) await compare("final view", kFinal, await unionfsView(), "unionfs");
    lap("final");

    await unionfs.unmount();
    await kernel.unmount();
    const garbage = await readdir(join(uw, "work")).catch(() => []);
    if (garbage.length > 0) report.problems.push(`unionfs left temp files in its work dir: ${garbage.join(", ")}`);
    // unionfs's own work dir: its index/ holds the hard-link index the kernel must read as its own
    const remount = mountKernel(scratch, lowers, uu, uw, rmnt);
    await compare(
      "unionfs upper under kernel overlayfs",
      kFinal,
      await snapshot(rmnt, lowers, { upper: uu }),
      "kernel-on-unionfs-upper",
    );
    await remount.unmount();
    lap("remount");
  } catch (e) {
    report.problems.push(`harness error: ${e instanceof Error ? (e.stack ?? e.message) : String(e)}`);
  } finally {
    try {
      await scratch.cleanup();
    } catch (e) {
      report.problems.push(`cleanup: ${e instanceof Error ? e.message : String(e)}`);
    }
    lap("cleanup");
  }
  report.problems = report.problems.filter((p) => !opts.knownGaps.some((g) => g.hides?.(p) === true));
  return report;
}

function stepLine(i: number, op: Op, k: Outcome, u: Outcome): string {
  const same = formatOutcome(k) === formatOutcome(u);
  return `${String(i).padStart(2)}: ${formatOp(op)}  => ${same ? formatOutcome(k) : `kernel ${formatOutcome(k)} / unionfs ${formatOutcome(u)}`}`;
}
