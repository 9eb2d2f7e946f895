/**
 * Seeded random operation sequences for differential tests of the write side: a generator that
 * picks the next operation from the current merged view (see fs-ops.ts for the operations).
 *
 * Invariants:
 * - a sequence is a pure function of its seed and the views it is shown, so a seed replays it
 *   exactly as long as the oracle behaves the same;
 * - symlinks are made with downward relative targets only (no `..`, no leading `/`), so the
 *   operations that follow a final symlink (open, truncate, chmod) stay inside the tree;
 * - paths are mostly ones the view shows, some are fresh, hidden by a lower whiteout or opaque
 *   dir, deleted earlier, or under a missing dir or a file, so error paths are exercised too.
 */
import { XATTR_CREATE, XATTR_REPLACE } from "../sys/xattr.js";
import type { Data, Op, OpKind } from "./fs-ops.js";
import type { Rng } from "./rng.js";

const parentOf = (path: string) => (path.includes("/") ? path.slice(0, path.lastIndexOf("/")) : "");
const joinRel = (dir: string, name: string) => (dir === "" ? name : `${dir}/${name}`);

export type EntryType = "file" | "dir" | "symlink" | "other";

export interface ViewEntry {
  /** mount-relative, "" for the root */
  path: string;
  type: EntryType;
  size: number;
  nlink: number;
  /** symlinks: where they point */
  target?: string;
}

/**
 * The entry `path` ends at, following symlinks in the final component (at most 8), or null
 * when it does not exist in the view.
 */
export function resolveInView(view: readonly ViewEntry[], path: string): ViewEntry | null {
  let current = path;
  for (let i = 0; i < 8; i++) {
    const entry = view.find((e) => e.path === current);
    if (entry?.type !== "symlink" || entry.target === undefined) return entry ?? null;
    current = joinRel(parentOf(current), entry.target);
  }
  return null;
}

/** What the generator may aim at besides what the view shows. */
export interface GeneratorHints {
  /** names hidden by whiteouts or opaque dirs in the lowers: re-creating them is interesting */
  ghosts: readonly string[];
  /** fresh names to create in any directory */
  freshNames: readonly string[];
  /** xattr names to set and remove */
  xattrNames: readonly string[];
}

export const OP_WEIGHTS: Readonly<Record<OpKind, number>> = {
  create: 9,
  "create-trunc": 3,
  write: 8,
  append: 5,
  truncate: 5,
  read: 3,
  unlink: 7,
  mkdir: 6,
  rmdir: 5,
  rename: 16,
  symlink: 4,
  link: 4,
  chmod: 5,
  chown: 4,
  utimens: 5,
  setxattr: 5,
  removexattr: 4,
};

const MODES = [0o644, 0o600, 0o755, 0o700, 0o444, 0o000, 0o4755, 0o2755, 0o1777, 0o6711];
const IDS = [0, 1000, 1234];

/**
 * Picks operations from a view. Paths are mostly names the view shows; some are fresh names,
 * names that lowers hide (whiteouts, opaque dirs), names deleted earlier in the sequence, paths
 * through a file or a missing directory, so that the error paths get exercised as well.
 */
export class OpGenerator {
  /** paths that existed earlier in the sequence and were removed or renamed away */
  private readonly gone = new Set<string>();

  constructor(
    private readonly rng: Rng,
    private readonly hints: GeneratorHints,
  ) {}

  /** Remembers paths that vanished between two views, as candidates for re-creation. */
  observe(before: readonly ViewEntry[], after: readonly ViewEntry[]): void {
    const now = new Set(after.map((e) => e.path));
    for (const e of before) if (!now.has(e.path) && e.path !== "") this.gone.add(e.path);
    for (const path of now) this.gone.delete(path);
  }

  next(view: readonly ViewEntry[], kind: OpKind = this.rng.weighted(OP_WEIGHTS)): Op {
    const r = this.rng;
    const data = (max: number): Data => ({ len: r.chance(0.1) ? 0 : r.int(1, max), seed: r.int(1, 2 ** 31) });
    switch (kind) {
      case "create":
        return { kind, path: this.newPath(view), mode: r.pick([0o644, 0o600, 0o755, 0o4755]), data: data(5000) };
      case "create-trunc":
        return { kind, path: r.chance(0.5) ? this.existing(view, "file") : this.newPath(view), data: data(3000) };
      case "write": {
        const target = this.existingFile(view);
        const offset = r.chance(0.15) ? r.int(60_000, 140_000) : r.int(0, target.size + 4096);
        return { kind, path: target.path, offset, data: data(9000) };
      }
      case "append":
        return { kind, path: this.existing(view, "file"), data: data(5000) };
      case "truncate": {
        const target = this.existingFile(view);
        const size = r.pick([0, r.int(0, target.size), target.size + r.int(1, 20_000)]);
        return { kind, path: target.path, size };
      }
      case "read":
        return { kind, path: this.existing(view, "file") };
      case "unlink":
        return { kind, path: this.existing(view, r.chance(0.85) ? "nondir" : "any") };
      case "mkdir":
        return { kind, path: this.newPath(view), mode: r.pick([0o755, 0o700, 0o777, 0o2755, 0o1777]) };
      case "rmdir":
        return { kind, path: this.existing(view, r.chance(0.85) ? "dir" : "any") };
      case "rename":
        return this.rename(view);
      case "symlink":
        return { kind, target: this.symlinkTarget(view), path: this.newPath(view) };
      case "link":
        return { kind, from: this.existing(view, r.chance(0.9) ? "nondir" : "any"), to: this.newPath(view) };
      case "chmod":
        // chmod follows symlinks; targets stay inside the tree (see the module header)
        return { kind, path: this.existing(view, "any"), mode: r.pick(MODES) };
      case "chown":
        return { kind, path: this.existing(view, "any"), uid: r.pick(IDS), gid: r.pick(IDS) };
      case "utimens": {
        const ms = () => r.int(1_000_000_000, 1_700_000_000) * 1000 + r.int(0, 999);
        return { kind, path: this.existing(view, "any"), atimeMs: ms(), mtimeMs: ms() };
      }
      case "setxattr":
        return {
          kind,
          path: this.existing(view, "any"),
          name: r.pick(this.hints.xattrNames),
          value: r.chance(0.1) ? "" : `v${r.int(0, 999)}`,
          flags: r.pick([0, 0, 0, XATTR_CREATE, XATTR_REPLACE]),
        };
      case "removexattr":
        return { kind, path: this.existing(view, "any"), name: r.pick(this.hints.xattrNames) };
    }
  }

  private rename(view: readonly ViewEntry[]): Op {
    const r = this.rng;
    const from = this.existing(view, "any");
    const choice = r.weighted({ fresh: 8, onto: 6, ghost: 3, intoSelf: 1, same: 1, sibling: 2 });
    let to: string;
    if (choice === "onto") to = this.existing(view, "any");
    else if (choice === "ghost") to = this.ghostPath(view);
    else if (choice === "intoSelf") to = joinRel(from, r.pick(this.hints.freshNames));
    else if (choice === "same") to = from;
    else if (choice === "sibling") to = joinRel(parentOf(from), r.pick(this.hints.freshNames));
    else to = this.newPath(view);
    return { kind: "rename", from, to };
  }

  /** Downward relative targets only: a name in the same dir, or a path into a subdirectory. */
  private symlinkTarget(view: readonly ViewEntry[]): string {
    const r = this.rng;
    if (r.chance(0.3)) return r.pick(this.hints.freshNames);
    const e = r.pick(view.filter((v) => v.path !== ""));
    return e.path.split("/").slice(-r.int(1, 2)).join("/");
  }

  /** Mostly a regular file (its size guides offsets), else any path, even a missing one. */
  private existingFile(view: readonly ViewEntry[]): ViewEntry {
    const r = this.rng;
    const files = view.filter((e) => e.type === "file");
    if (files.length > 0 && r.chance(0.85)) return r.pick(files);
    const path = this.existing(view, "any");
    return view.find((e) => e.path === path) ?? { path, type: "file", size: 0, nlink: 1 };
  }

  /** A path the view shows (of the wanted type when there is one), now and then a missing one. */
  private existing(view: readonly ViewEntry[], want: "file" | "dir" | "nondir" | "any"): string {
    const r = this.rng;
    if (r.chance(0.06)) return this.missingPath(view);
    const match = (e: ViewEntry) =>
      e.path !== "" &&
      (want === "any" ||
        (want === "nondir" && e.type !== "dir") ||
        (want === "file" && (e.type === "file" || (e.type === "symlink" && r.chance(0.2)))) ||
        e.type === want);
    const candidates = view.filter(match);
    if (candidates.length === 0) return this.missingPath(view);
    return r.pick(candidates).path;
  }

  /** A name not in the view: fresh, ghost, or under a missing parent or a file. */
  private missingPath(view: readonly ViewEntry[]): string {
    const r = this.rng;
    const c = r.weighted({ ghost: 3, noParent: 1, throughFile: 1, fresh: 2 });
    if (c === "ghost") return this.ghostPath(view);
    if (c === "noParent") return `no-such-dir/${r.pick(this.hints.freshNames)}`;
    if (c === "throughFile") {
      const files = view.filter((e) => e.type === "file");
      if (files.length > 0) return `${r.pick(files).path}/${r.pick(this.hints.freshNames)}`;
    }
    return this.newPath(view);
  }

  private ghostPath(view: readonly ViewEntry[]): string {
    const candidates = [...this.hints.ghosts, ...this.gone];
    return candidates.length > 0 && this.rng.chance(0.9) ? this.rng.pick(candidates) : this.newPath(view);
  }

  /** A fresh name in some directory of the view, sometimes a ghost (may exist: EEXIST paths). */
  private newPath(view: readonly ViewEntry[]): string {
    const r = this.rng;
    if (r.chance(0.2)) return this.ghostPath(view);
    const dirs = view.filter((e) => e.type === "dir");
    const dir = dirs.length > 0 ? r.pick(dirs).path : "";
    return joinRel(dir, r.pick(this.hints.freshNames));
  }
}
