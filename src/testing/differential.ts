/**
 * The differential read set-up: one logical layer stack, written once in the encodings under
 * test (for unionfs) and once in the kernel's own encodings (for kernel overlayfs), both mounted
 * read-only. When the two encodings coincide, both mounts share the same layer directories, so
 * inode numbers are compared exactly. Lowers are spread over filesystems as the layout says (see
 * fs-layout.ts); the kernel mount uses xino so that its inode numbers are defined across them.
 */
import { isDeepStrictEqual } from "node:util";
import { apply, type Entry, forKernel } from "./fixture.js";
import { type FsLayout, LayoutDirs, ONE_FS } from "./fs-layout.js";
import { kernelFeatures, mountOverlay, mountUnionfs, type TestMount } from "./mounts.js";
import type { Scratch } from "./scratch.js";
import { compareSnapshots, direntConsistency, type Snapshot, type SnapshotOptions, snapshot } from "./snapshot.js";
import { XINO_ON } from "./xino.js";

export interface DifferentialStack {
  kernel: TestMount;
  unionfs: TestMount;
  kernelLayers: string[];
  unionfsLayers: string[];
  /** true when both mounts use the same layer directories */
  shared: boolean;
}

export interface MountBothOptions {
  /**
   * scratch-relative directory to build the layers in (e.g. a tmpfs), for the layers the layout
   * keeps in the scratch dir; default the scratch root
   */
  layersIn?: string;
  /** which filesystems the lowers go on; default all in the scratch dir */
  layout?: FsLayout;
  /** more options for the kernel mount (after xino=on), e.g. redirect_dir=follow */
  kernelOptions?: readonly string[];
  /** what serves the unionfs mount (see transports.ts); default the run's first */
  transport?: string;
}

/** Builds `layers` (topmost first) and mounts them both ways under the scratch dir. */
export async function mountBoth(
  scratch: Scratch,
  layers: readonly (readonly Entry[])[],
  options: MountBothOptions = {},
): Promise<DifferentialStack> {
  const dirs = new LayoutDirs(scratch, options.layout ?? ONE_FS, { base: options.layersIn ?? "." });
  const kernelFormats = await kernelFeatures();
  const native = layers.map((l) => forKernel(l, kernelFormats));
  const shared = isDeepStrictEqual(
    native,
    layers.map((l) => [...l]),
  );
  const unionfsLayers: string[] = [];
  const kernelLayers: string[] = [];
  for (const [i, entries] of layers.entries()) {
    const dir = dirs.readOnlyLower(`l${i}`, i);
    apply(dir, entries);
    unionfsLayers.push(dir);
    if (shared) continue;
    const kdir = dirs.readOnlyLower(`k${i}`, i);
    apply(kdir, native[i] ?? []);
    kernelLayers.push(kdir);
  }
  if (shared) kernelLayers.push(...unionfsLayers);
  const kernel = await mountOverlay(scratch, { lowers: kernelLayers }, scratch.mkdir("kmnt"), [
    XINO_ON,
    ...(options.kernelOptions ?? []),
  ]);
  const unionfs = await mountUnionfs(scratch, { lowers: unionfsLayers }, scratch.mkdir("umnt"), {
    transport: options.transport,
  });
  return { kernel, unionfs, kernelLayers, unionfsLayers, shared };
}

export interface DifferentialResult {
  stack: DifferentialStack;
  kernel: Snapshot;
  unionfs: Snapshot;
  /** kernel vs unionfs, [] when they agree */
  differences: string[];
  /** d_ino/d_type vs lstat inside the unionfs view */
  unionfsConsistency: string[];
}

export async function snapshotBoth(stack: DifferentialStack, options?: SnapshotOptions): Promise<DifferentialResult> {
  const kernel = await snapshot(stack.kernel.mountpoint, stack.kernelLayers, options);
  const unionfs = await snapshot(stack.unionfs.mountpoint, stack.unionfsLayers, options);
  return {
    stack,
    kernel,
    unionfs,
    differences: compareSnapshots(kernel, unionfs),
    unionfsConsistency: direntConsistency(unionfs),
  };
}

export async function differential(
  scratch: Scratch,
  layers: readonly (readonly Entry[])[],
  options: SnapshotOptions & MountBothOptions = {},
): Promise<DifferentialResult> {
  return snapshotBoth(await mountBoth(scratch, layers, options), options);
}
