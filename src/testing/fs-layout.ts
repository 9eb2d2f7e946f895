/**
 * Filesystem layouts for mount tests: which filesystem each layer of a stack lives on. Copy-up,
 * rename and st_ino behave differently when the lowers and the upper are on different
 * filesystems (no rename or reflink across them, xino-mapped inode numbers), so the
 * differential, crash and CLI suites run once per layout, with kernel overlayfs as the oracle
 * in each.
 *
 * - `one-fs`: every layer in the test's scratch dir (ext4 under /tmp here);
 * - `split-tmpfs`: lowers on one tmpfs, upper and work dir on a second tmpfs;
 * - `ext4-tmpfs`: lowers in the scratch dir, upper and work dir on a tmpfs.
 *
 * A read-only stack has no upper to split from, so there "split" spreads the lowers instead:
 * lower i is on the layout's lower filesystem for even i and on its upper filesystem for odd i.
 * Mountpoints may live anywhere; they stay in the scratch dir.
 *
 * The tmpfs mounts are made inside the test's own dir on first use and unmounted by its cleanup
 * (after the mounts that use them: cleanups run last-in first-out).
 *
 *   UNIONFS_LAYOUTS=one-fs,ext4-tmpfs   run only these layouts (default: all)
 *
 * Suites that mount unionfs also run once per transport (transports.ts): transports × layouts.
 */
import { namesFromEnv } from "./env-names.js";

export const LAYOUT_NAMES = ["one-fs", "split-tmpfs", "ext4-tmpfs"] as const;
export type LayoutName = (typeof LAYOUT_NAMES)[number];

type FsKind = "scratch" | "tmpfs-a" | "tmpfs-b";

export interface FsLayout {
  readonly name: LayoutName;
  /** where lowers go when there is an upper */
  readonly lowerFs: FsKind;
  /** where the upper and the work dir go */
  readonly upperFs: FsKind;
}

const LAYOUTS: Record<LayoutName, FsLayout> = {
  "one-fs": { name: "one-fs", lowerFs: "scratch", upperFs: "scratch" },
  "split-tmpfs": { name: "split-tmpfs", lowerFs: "tmpfs-a", upperFs: "tmpfs-b" },
  "ext4-tmpfs": { name: "ext4-tmpfs", lowerFs: "scratch", upperFs: "tmpfs-a" },
};

export const ONE_FS: FsLayout = LAYOUTS["one-fs"];

/** The layouts this run covers: UNIONFS_LAYOUTS (comma-separated names), else all of them. */
export function selectedLayouts(env: NodeJS.ProcessEnv = process.env): FsLayout[] {
  return namesFromEnv("UNIONFS_LAYOUTS", "layout", LAYOUT_NAMES, env).map((name) => LAYOUTS[name]);
}

/** A test's own dir, able to hold a tmpfs that its cleanup unmounts (a Scratch). */
export interface Place {
  /** makes `rel` (and its parents) below the dir, returns the absolute path */
  mkdir(rel: string): string;
  /** mounts a tmpfs on `rel` below the dir, unmounted at cleanup; returns the absolute path */
  mountTmpfs(rel: string, size?: string): string;
}

export interface LayoutDirsOptions {
  /** where `scratch` directories go, relative to the place (default: its root) */
  base?: string;
  /** size limit of each tmpfs; memory is used only as files are written */
  tmpfsSize?: string;
}

/** Allocates a stack's directories in a place, on the filesystems a layout says. */
export class LayoutDirs {
  private readonly mounted = new Set<FsKind>();

  constructor(
    private readonly place: Place,
    readonly layout: FsLayout,
    private readonly options: LayoutDirsOptions = {},
  ) {}

  /** A new directory for a lower layer of a stack that has an upper. */
  lower(rel: string): string {
    return this.dirOn(this.layout.lowerFs, rel);
  }

  /** A new directory on the upper's filesystem: the upper, the work dir. */
  upper(rel: string): string {
    return this.dirOn(this.layout.upperFs, rel);
  }

  /** A new directory for lower `index` (topmost = 0) of a stack without an upper. */
  readOnlyLower(rel: string, index: number): string {
    return this.dirOn(index % 2 === 0 ? this.layout.lowerFs : this.layout.upperFs, rel);
  }

  private dirOn(fs: FsKind, rel: string): string {
    if (fs === "scratch") return this.place.mkdir(`${this.options.base ?? "."}/${rel}`);
    if (!this.mounted.has(fs)) {
      this.place.mountTmpfs(`fs-${fs}`, this.options.tmpfsSize ?? "512m");
      this.mounted.add(fs);
    }
    return this.place.mkdir(`fs-${fs}/${rel}`);
  }
}
