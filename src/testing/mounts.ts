/**
 * The two mounts a differential test compares, both registered with the test's Scratch so they
 * are unmounted in afterEach whatever happens:
 *
 * - `mountOverlay`: kernel overlayfs (the oracle), by mount(2) directly.
 * - `mountUnionfs`: the product as users run it: the built CLI (`node dist/cli/main.js mount`)
 *   in a child process, which daemonizes and exits once the mount is live; unmounted with the
 *   CLI's `umount`, which returns once the daemon has exited. The daemon is a separate process,
 *   so the test process may use the mount freely (see STYLE.md, "Tests"). It mounts with the
 *   transport it is given, else the first the run selects (transports.ts).
 *
 * Layer lists are topmost first, as in `lowerdir=`.
 */
import { execFile } from "node:child_process";
import { existsSync, readFileSync, statSync } from "node:fs";
import { mkdir, mkdtemp, readdir, rm, writeFile } from "node:fs/promises";
import { tmpdir } from "node:os";
import { dirname, join, resolve } from "node:path";
import { fileURLToPath } from "node:url";
import { promisify } from "node:util";
import { escapeOverlayPath, overlayDirOptions } from "../format/overlay-options.js";
import { MNT_DETACH, mount, umount2 } from "../sys/mount.js";
import { lsetxattr } from "../sys/xattr.js";
import type { KernelFormats } from "./fixture.js";
import { mountsUnder, type Scratch } from "./scratch.js";
import { defaultTransport, transportArgs } from "./transports.js";

const run = promisify(execFile);

const REPO = resolve(dirname(fileURLToPath(import.meta.url)), "../..");
export const CLI = join(REPO, "dist/cli/main.js");
const CLI_TIMEOUT_MS = 30_000;

export interface StackDirs {
  /** topmost first */
  lowers: readonly string[];
  upper?: string;
  work?: string;
}

export interface TestMount {
  readonly mountpoint: string;
  /** Unmounts now; a no-op if already done. */
  unmount(): Promise<void>;
}

function isMountpoint(path: string): boolean {
  return mountsUnder(path).includes(path);
}

export async function mountOverlay(
  scratch: Scratch,
  stack: StackDirs,
  mountpoint: string,
  extra: readonly string[] = [],
): Promise<TestMount> {
  return mountOverlaySync(scratch, stack, mountpoint, extra);
}

/** Kernel overlayfs on `mountpoint`, unmounted at cleanup; `extra` options are appended. */
export function mountOverlaySync(
  scratch: Scratch,
  stack: StackDirs,
  mountpoint: string,
  extra: readonly string[] = [],
): TestMount {
  const opts = overlayDirOptions(stack);
  if (stack.lowers.length < 2 && stack.upper === undefined) {
    throw new Error("kernel overlayfs needs two lower layers when there is no upper (add an empty one)");
  }
  mount("overlay", mountpoint, "overlay", 0, [...opts, ...extra].join(","));
  let done = false;
  const unmount = async () => {
    if (done) return;
    done = true;
    try {
      umount2(mountpoint, 0);
    } catch {
      umount2(mountpoint, MNT_DETACH);
    }
  };
  scratch.onCleanup(unmount);
  return { mountpoint, unmount };
}

export interface UnionfsOptions {
  /** extra CLI arguments before the positionals, e.g. ["-o", "noexec"] */
  args?: readonly string[];
  /** what serves the mount (a name in src/daemon/transports.ts); default defaultTransport() */
  transport?: string;
  /** added to the environment the CLI, and so the daemon it starts, runs with */
  env?: Readonly<Record<string, string>>;
}

export async function mountUnionfs(
  scratch: Scratch,
  stack: StackDirs,
  mountpoint: string,
  options: UnionfsOptions = {},
): Promise<TestMount> {
  await checkBuilt();
  const env = {
    ...process.env,
    ...options.env,
    UNIONFS_RUNTIME_DIR: scratch.runtimeDir,
    UNIONFS_LOG: scratch.path("unionfs.log"),
  };
  const args = ["mount", ...transportArgs(options.transport ?? defaultTransport()), ...(options.args ?? [])];
  if (stack.work !== undefined) args.push("-w", stack.work);
  args.push(stack.lowers.map(escapeOverlayPath).join(":"));
  if (stack.upper !== undefined) args.push(stack.upper);
  args.push(mountpoint);
  // Registered before mounting: a mount that goes live after a timeout is still cleaned up.
  let done = false;
  const unmount = async () => {
    if (done) return;
    done = true;
    if (!isMountpoint(mountpoint)) return;
    await cli(env, ["umount", mountpoint], "umount");
  };
  scratch.onCleanup(unmount);
  await cli(env, args, "mount");
  if (!isMountpoint(mountpoint)) throw new Error(`unionfs mount exited 0 but ${mountpoint} is not mounted`);
  return { mountpoint, unmount };
}

async function cli(env: NodeJS.ProcessEnv, args: string[], what: string): Promise<void> {
  try {
    await run(process.execPath, [CLI, ...args], { env, timeout: CLI_TIMEOUT_MS });
  } catch (e) {
    const err = e as { code?: unknown; stderr?: string; signal?: string };
    const log =
      env.UNIONFS_LOG !== undefined && existsSync(env.UNIONFS_LOG) ? readFileSync(env.UNIONFS_LOG, "utf8") : "";
    throw new Error(
      `unionfs ${what} failed (exit ${String(err.code)}${err.signal ? `, ${err.signal}` : ""}): ` +
        `${err.stderr?.trim() ?? ""}${log ? `\ndaemon log:\n${log.slice(-4000)}` : ""}`,
    );
  }
}

let builtChecked = false;

/** What `unionfs mount` runs: a dist/ older than any of these sources would test stale code. */
const MOUNT_SOURCES = ["cli/", "daemon/", "fuse/", "devfuse/", "union/", "format/", "path/", "sys/", "errors.ts"];

/** The tests run the built CLI: refuse to test a dist/ older than the sources it came from. */
async function checkBuilt(): Promise<void> {
  if (builtChecked) return;
  if (!existsSync(CLI)) throw new Error(`${CLI} is missing: run 'npm run build' first`);
  const sources = (await readdir(join(REPO, "src"), { recursive: true })).filter(
    (f) => MOUNT_SOURCES.some((p) => f.startsWith(p)) && f.endsWith(".ts") && !/\.(test|d)\.ts$/.test(f),
  );
  for (const rel of sources) {
    const built = join(REPO, "dist", rel.replace(/\.ts$/, ".js"));
    if (!existsSync(built) || statSync(built).mtimeMs < statSync(join(REPO, "src", rel)).mtimeMs) {
      throw new Error(`dist/ is older than src/${rel}: run 'npm run build' first`);
    }
  }
  builtChecked = true;
}

let features: Promise<KernelFormats> | undefined;

/**
 * What this kernel's overlayfs reads, found by trying it on a throwaway mount (not by version):
 * an xattr whiteout (kernel >= 6.8: empty file with trusted.overlay.whiteout in a directory
 * marked trusted.overlay.opaque=x) over a file in the layer below.
 */
export function kernelFeatures(): Promise<KernelFormats> {
  features ??= probeKernel();
  return features;
}

async function probeKernel(): Promise<KernelFormats> {
  const root = await mkdtemp(join(tmpdir(), "unionfs-probe-"));
  const [top, bottom, mnt] = ["top", "bottom", "mnt"].map((d) => join(root, d)) as [string, string, string];
  try {
    for (const d of [top, bottom, mnt]) await mkdir(d);
    await writeFile(join(bottom, "f"), "x");
    await writeFile(join(top, "f"), "");
    lsetxattr(join(top, "f"), "trusted.overlay.whiteout", Buffer.from("y"));
    lsetxattr(top, "trusted.overlay.opaque", Buffer.from("x"));
    mount("overlay", mnt, "overlay", 0, `lowerdir=${top}:${bottom}`);
    try {
      return { xattrWhiteouts: !existsSync(join(mnt, "f")) };
    } finally {
      umount2(mnt, MNT_DETACH);
    }
  } finally {
    await rm(root, { recursive: true, force: true });
  }
}
