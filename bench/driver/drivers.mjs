// @ts-check
/**
 * The storage drivers under comparison, behind one interface: `start()` gives a fresh instance
 * (a new mount over the data set's lower layers with an empty upper and work dir, or for `bare`
 * the flattened copy) and `teardown()` removes it.
 *
 *   unionfs         our FUSE mount, as users run it: `unionfs mount L1:L2:L3 UPPER MNT -w WORK`
 *                   (daemonizes; the pid comes from its runtime record)
 *   overlay         kernel overlayfs, the baseline every ratio is taken against
 *   fuse-overlayfs  the reference FUSE implementation, run in the foreground as our child
 *   bare            no union: the merged view already flattened onto the same filesystem
 *   unionfs-volatile, overlay-volatile
 *                   the same with overlayfs's `volatile` option: copy-ups are not synced, as
 *                   fuse-overlayfs never syncs them; only run when asked for with --drivers
 *   unionfs-devfuse our mount served by the /dev/fuse transport (--transport devfuse); only run
 *                   when asked for with --drivers
 *   unionfs@base, unionfs-volatile@base
 *                   with `--compare DIR`: the same mount from another checkout's build
 *                   (DIR/dist/cli/main.js, with DIR's own node_modules), next to its twin
 *
 * The upper and work dir go into `upperDir`: the instance directory itself, or with
 * `--upper-fs tmpfs` a fresh directory on the run's tmpfs (upper-fs.mjs). `bare` has no upper;
 * its writable root (a copy of the parts a workload changes, and the files it creates) goes
 * there too, so that every driver's writes land on the same filesystem.
 *
 * Teardown unmounts first and removes the instance directories only once nothing is mounted
 * below them: rm -rf through a live union would reach into the lower layers.
 */
import { spawn } from "node:child_process";
import { existsSync, readdirSync, readFileSync, statSync } from "node:fs";
import { mkdir } from "node:fs/promises";
import { dirname, join } from "node:path";
import { fileURLToPath } from "node:url";
import { kernelDev } from "./fuse-requests.mjs";
import { firstLine, isAlive, isMounted, mountPoints, mustRun, runCommand, waitFor, which } from "./proc.mjs";

const REPO = dirname(dirname(dirname(fileURLToPath(import.meta.url))));
export const UNIONFS_CLI = join(REPO, "dist", "cli", "main.js");
/** The name suffix of the drivers `--compare DIR` adds. */
export const BASE_SUFFIX = "@base";
const MOUNT_TIMEOUT_MS = 30_000;

/**
 * @typedef {object} Instance
 * @property {string} root                  where the workload runs
 * @property {string | null} upper         where new and changed files land (bare: its writable root), or null
 * @property {string | null} work          the work dir, or null
 * @property {number | null} daemonPid      the process serving the mount (FUSE drivers)
 * @property {number | null} connection    the FUSE connection (kernel dev_t) for request counts
 * @property {() => Promise<void>} teardown
 */

/**
 * @typedef {object} StartContext
 * @property {import("../../tools/make-dataset.mjs").Manifest} dataset
 * @property {string} dir        an empty directory this instance may use (same filesystem as the layers)
 * @property {string} upperDir   an empty directory for the upper and work dir: `dir`, or one on another filesystem
 * @property {readonly string[]} mutates  parts of the merged view the workload changes (bare copies them)
 * @property {boolean} writes    whether the workload creates files in the root
 */

/**
 * @typedef {object} Driver
 * @property {string} name
 * @property {string} title
 * @property {boolean} [optional]   run only when named in --drivers
 * @property {() => Promise<string | null>} unavailable  why it cannot run here, or null
 * @property {(ctx: StartContext) => Promise<Instance>} start
 */

async function unionDirs(/** @type {StartContext} */ ctx) {
  const dirs = { upper: join(ctx.upperDir, "upper"), work: join(ctx.upperDir, "work"), mnt: join(ctx.dir, "mnt") };
  for (const d of Object.values(dirs)) await mkdir(d, { recursive: true });
  return dirs;
}

/** Removes the instance's directories (`dir`, and `upperDir` when it is elsewhere), unless something is mounted below. */
async function removeDirs(/** @type {StartContext} */ ctx) {
  const dirs = ctx.upperDir === ctx.dir ? [ctx.dir] : [ctx.dir, ctx.upperDir];
  for (const dir of dirs) {
    const still = mountPoints().filter((m) => m === dir || m.startsWith(`${dir}/`));
    if (still.length > 0) throw new Error(`not removing ${dir}: still mounted: ${still.join(", ")}`);
  }
  for (const dir of dirs) await mustRun(["rm", "-rf", "--one-file-system", "--", dir]);
}

/** Unmounts `mnt` (trying `unmount` first, then a lazy detach) and removes the instance's directories. */
async function finish(
  /** @type {string} */ mnt,
  /** @type {StartContext} */ ctx,
  /** @type {() => Promise<unknown>} */ unmount,
) {
  if (isMounted(mnt)) {
    try {
      await unmount();
    } catch {}
    if (isMounted(mnt)) await runCommand({ argv: ["umount", "-l", mnt] });
  }
  await removeDirs(ctx);
}

function fuseConnection(/** @type {string} */ mnt) {
  return kernelDev(statSync(mnt).dev);
}

/** What `--transport` a unionfs driver mounts with, and how its name and title say so. */
const TRANSPORTS = {
  "fuse-native": { suffix: "", title: "fuse-native, libfuse 2.9" },
  devfuse: { suffix: "-devfuse", title: "devfuse: /dev/fuse from a worker thread" },
};

/**
 * @param {boolean} volatile
 * @param {{cli: string, dir: string} | null} [base]  another checkout's build (--compare), or null for this one
 * @param {keyof typeof TRANSPORTS} [transport]
 * @param {readonly string[]} [extraArgs]  more `unionfs mount` options (bench/getattr-loop.mjs's --workers)
 * @returns {Driver}
 */
export const unionfsDriver = (volatile, base = null, transport = "fuse-native", extraArgs = []) => ({
  name: `${volatile ? "unionfs-volatile" : "unionfs"}${TRANSPORTS[transport].suffix}${base === null ? "" : BASE_SUFFIX}`,
  title:
    (volatile ? "unionfs --volatile (copy-ups not synced)" : `unionfs (${TRANSPORTS[transport].title})`) +
    (base === null ? "" : `, the build in ${base.dir} (--compare)`),
  optional: volatile || transport !== "fuse-native",
  async unavailable() {
    const cli = base?.cli ?? UNIONFS_CLI;
    if (!existsSync(cli)) return `${cli} is missing (npm run build${base === null ? "" : ` in ${base.dir}`})`;
    if (!existsSync("/dev/fuse")) return "/dev/fuse is missing";
    return null;
  },
  async start(ctx) {
    const { upper, work, mnt } = await unionDirs(ctx);
    const env = { UNIONFS_RUNTIME_DIR: join(ctx.dir, "runtime") };
    const argv = [
      process.execPath,
      base?.cli ?? UNIONFS_CLI,
      "mount",
      ...(transport === "fuse-native" ? [] : ["--transport", transport]),
      ...extraArgs,
      ctx.dataset.layers.join(":"),
      upper,
      mnt,
      "-w",
      work,
    ];
    if (volatile) argv.push("--volatile");
    await mustRun(argv, env, MOUNT_TIMEOUT_MS);
    /** @type {number | null} */
    let pid = null;
    // umount(8) and a wait for the daemon to exit is what `unionfs umount` does, without
    // starting another Node process for every run
    const unmount = async () => {
      await mustRun(["umount", mnt]);
      if (pid !== null && !(await waitFor(() => !isAlive(/** @type {number} */ (pid)), 10_000))) {
        throw new Error(`unionfs daemon ${pid} did not exit after the unmount`);
      }
    };
    const teardown = () => finish(mnt, ctx, unmount);
    try {
      pid = daemonPid(join(ctx.dir, "runtime", "mounts"), mnt);
      return { root: mnt, upper, work, daemonPid: pid, connection: fuseConnection(mnt), teardown };
    } catch (e) {
      await teardown();
      throw e;
    }
  },
});

function daemonPid(/** @type {string} */ recordDir, /** @type {string} */ mnt) {
  for (const name of readdirSync(recordDir)) {
    if (!name.endsWith(".json")) continue;
    const record = JSON.parse(readFileSync(join(recordDir, name), "utf8"));
    if (record.mountpoint === mnt && typeof record.pid === "number") return /** @type {number} */ (record.pid);
  }
  throw new Error(`no daemon record for ${mnt} in ${recordDir}`);
}

/** @returns {Driver} */
const overlayDriver = (/** @type {boolean} */ volatile) => ({
  name: volatile ? "overlay-volatile" : "overlay",
  title: volatile ? "kernel overlayfs, volatile" : "kernel overlayfs",
  optional: volatile,
  async unavailable() {
    if (!readFileSync("/proc/filesystems", "utf8").includes("\toverlay\n")) {
      const probe = await runCommand({ argv: ["modprobe", "overlay"] });
      if (probe.code !== 0) return "the kernel has no overlay filesystem";
    }
    return null;
  },
  async start(ctx) {
    const { upper, work, mnt } = await unionDirs(ctx);
    const opts = `lowerdir=${ctx.dataset.layers.join(":")},upperdir=${upper},workdir=${work}${volatile ? ",volatile" : ""}`;
    await mustRun(["mount", "-t", "overlay", "overlay", "-o", opts, mnt]);
    return {
      root: mnt,
      upper,
      work,
      daemonPid: null,
      connection: null,
      teardown: () => finish(mnt, ctx, () => mustRun(["umount", mnt])),
    };
  },
});

/** @type {Driver} */
const fuseOverlayfs = {
  name: "fuse-overlayfs",
  title: "fuse-overlayfs (libfuse 3)",
  async unavailable() {
    if (which("fuse-overlayfs") === null) return "fuse-overlayfs is not installed (apt-get install fuse-overlayfs)";
    if (!existsSync("/dev/fuse")) return "/dev/fuse is missing";
    return null;
  },
  async start(ctx) {
    const { upper, work, mnt } = await unionDirs(ctx);
    const opts = `lowerdir=${ctx.dataset.layers.join(":")},upperdir=${upper},workdir=${work}`;
    const child = spawn("fuse-overlayfs", ["-f", "-o", opts, mnt], { stdio: ["ignore", "ignore", "pipe"], cwd: "/" });
    let stderr = "";
    child.stderr.on("data", (c) => {
      if (stderr.length < 4096) stderr += c.toString("utf8");
    });
    const pid = child.pid ?? -1;
    const exited = new Promise((resolve) => child.on("exit", resolve));
    const unmount = async () => {
      await mustRun([which("fusermount3") ?? "umount", ...(which("fusermount3") ? ["-u"] : []), mnt]);
      const gone = await waitFor(() => child.exitCode !== null || !isAlive(pid), 10_000);
      if (!gone) child.kill("SIGTERM");
      await exited;
    };
    const teardown = () => finish(mnt, ctx, unmount);
    const up = await waitFor(() => isMounted(mnt) || child.exitCode !== null, MOUNT_TIMEOUT_MS);
    if (!up || child.exitCode !== null) {
      if (child.exitCode === null) child.kill("SIGKILL");
      await teardown();
      throw new Error(`fuse-overlayfs did not mount: ${firstLine(stderr)}`);
    }
    return { root: mnt, upper, work, daemonPid: pid, connection: fuseConnection(mnt), teardown };
  },
};

/** @type {Driver} */
const bare = {
  name: "bare",
  title: "bare directory (flattened, no union)",
  async unavailable() {
    return null;
  },
  async start(ctx) {
    // Reading workloads use the flattened copy itself; writing ones get a directory of their
    // own with copies of the parts they change, so every run starts from the same data.
    const teardown = () => removeDirs(ctx);
    if (ctx.mutates.length === 0 && !ctx.writes) {
      return { root: ctx.dataset.bare, upper: null, work: null, daemonPid: null, connection: null, teardown };
    }
    const root = join(ctx.upperDir, "root");
    await mkdir(root, { recursive: true });
    for (const part of ctx.mutates) await mustRun(["cp", "-a", join(ctx.dataset.bare, part), join(root, part)]);
    return { root, upper: root, work: null, daemonPid: null, connection: null, teardown };
  },
};

export const DRIVERS = [
  unionfsDriver(false),
  overlayDriver(false),
  fuseOverlayfs,
  bare,
  unionfsDriver(true),
  overlayDriver(true),
  unionfsDriver(false, null, "devfuse"),
];
export const BASELINE = "overlay";

/**
 * The unionfs drivers again, run from the checkout in `dir` (built): `unionfs@base`,
 * `unionfs-volatile@base`, `unionfs-devfuse@base`.
 */
export function baseDrivers(/** @type {string} */ dir) {
  const base = { cli: join(dir, "dist", "cli", "main.js"), dir };
  return [unionfsDriver(false, base), unionfsDriver(true, base), unionfsDriver(false, base, "devfuse")];
}
