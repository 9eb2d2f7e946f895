/**
 * The run as data: which namespaces, which mounts in which order, which process settings. A pure
 * function of the resolved request, so every choice here is unit-tested without root; the native
 * helper (native/unionfs-run.c) executes the plan and decides nothing.
 *
 * The container's file system, in order (targets are paths inside the new root):
 *   /            the union: kernel overlayfs mounted by the helper inside its own mount
 *                namespace (so it vanishes with the run), or a bind of our FUSE mount; for an
 *                overlay whose upper is in memory, first a tmpfs on the root dir holding the
 *                upper and work dirs, the overlay then mounted over it
 *   /proc        a new procfs for the new pid namespace
 *   /sys         sysfs, read-only; a read-only bind of the host's when a rootless run shares the
 *                host network (sysfs can only be mounted by the owner of the net namespace)
 *   /dev         tmpfs with null zero full random urandom tty bound from the host (binds work
 *                in a user namespace, where mknod does not), fd/stdin/stdout/stderr links,
 *                devpts (newinstance, ptmxmode=0666) with /dev/ptmx, shm, mqueue
 *   masks        docker's: kernel-wide /proc files hidden or read-only
 * then pivot_root into it and detach the old root, set the host name, bring up lo in a new
 * network namespace. The helper joins the cgroups, drops to docker's default capabilities,
 * switches user, changes directory and execs.
 */
import { join } from "node:path";
import { overlayDirOptions } from "../format/overlay-options.js";
import type { NetMode } from "./run-spec.js";

export type MountFlag = "ro" | "nosuid" | "nodev" | "noexec" | "relatime" | "strictatime" | "bind" | "rec";

export type Step =
  | {
      op: "mount";
      source: string | null;
      target: string;
      fstype: string | null;
      flags: MountFlag[];
      data: string | null;
      optional?: boolean;
    }
  | { op: "mkdir"; path: string; mode: number; optional?: boolean }
  | { op: "file"; path: string; optional?: boolean }
  | { op: "symlink"; target: string; path: string; optional?: boolean }
  | { op: "readonly"; path: string; optional?: boolean }
  | { op: "mask"; path: string; optional?: boolean }
  | { op: "pivot" }
  | { op: "hostname"; name: string }
  | { op: "loopback" };

/** How the union becomes the new root. */
export type RootMount =
  | {
      kind: "overlay";
      lowers: readonly string[];
      upper: string;
      work: string;
      /** the upper is the run's own, removed afterwards: never worth a sync (overlayfs `volatile`) */
      volatile?: boolean;
    }
  | {
      /**
       * Kernel overlayfs with a temporary upper in memory, as bwrap's --tmp-overlay and
       * systemd-nspawn's --volatile=overlay have it: nothing of the run is written to disk,
       * and the writable layer goes with the run's mount namespace, however the run ends.
       */
      kind: "tmpfs-overlay";
      lowers: readonly string[];
    }
  | { kind: "bind"; source: string };

export interface PlanInput {
  /** host directory that becomes / */
  rootDir: string;
  rootfs: RootMount;
  /** no privileges: a user namespace maps the caller to root */
  rootless: boolean;
  net: NetMode;
  hostname: string;
  /** the command's whole environment, K=V */
  env: readonly string[];
  cwd?: string;
  user?: string;
  init: boolean;
  /** cgroup.procs files to join before exec */
  cgroupProcs: readonly string[];
  command: readonly string[];
  role: HelperRole;
  /** appended, in parentheses, to a set-up error whose message starts with `prefix` */
  errorHint?: { prefix: string; text: string };
}

/**
 * How the helper ends the run. As the child of `unionfs run`, which then reads its status file
 * ("ok" / "error ..." / "exit N": a file is cheaper than a pipe) and cleans up; or handed the
 * run over (`unionfs run` only waits, as native/unionfs-wait), reporting on stderr and removing
 * the run's trees itself.
 */
export type HelperRole = { kind: "child"; statusFile: string } | { kind: "handover"; remove: readonly string[] };

export interface HelperPlan {
  namespaces: string[];
  mapRoot: boolean;
  steps: Step[];
  input: PlanInput;
}

export class PlanError extends Error {}

/** The kernel copies at most one page of mount options. */
const MAX_MOUNT_DATA = 4095;

const DEVICES = ["null", "zero", "full", "random", "urandom", "tty"] as const;
const MASKED = [
  "/proc/acpi",
  "/proc/asound",
  "/proc/kcore",
  "/proc/keys",
  "/proc/latency_stats",
  "/proc/timer_list",
  "/proc/timer_stats",
  "/proc/sched_debug",
  "/proc/scsi",
  "/sys/firmware",
  "/sys/devices/virtual/powercap",
];
const READ_ONLY = ["/proc/bus", "/proc/fs", "/proc/irq", "/proc/sys", "/proc/sysrq-trigger"];

export const DEFAULT_PATH = "/usr/local/sbin:/usr/local/bin:/usr/sbin:/usr/bin:/sbin:/bin";

export function planRun(input: PlanInput): HelperPlan {
  const namespaces = ["mount", "pid", "uts", "ipc"];
  if (input.net === "none") namespaces.push("net");
  if (input.rootless) namespaces.unshift("user");
  const steps: Step[] = [
    ...rootMount(input.rootfs, input.rootDir, input.rootless),
    ...procAndSys(input),
    ...devSteps(input.rootless),
    ...MASKED.map((path): Step => ({ op: "mask", path, optional: true })),
    ...READ_ONLY.map((path): Step => ({ op: "readonly", path, optional: true })),
    { op: "pivot" },
    { op: "hostname", name: input.hostname },
  ];
  if (input.net === "none") steps.push({ op: "loopback" });
  return { namespaces, mapRoot: input.rootless, steps, input };
}

function rootMount(rootfs: RootMount, rootDir: string, rootless: boolean): Step[] {
  if (rootfs.kind === "bind") {
    return [{ op: "mount", source: rootfs.source, target: "/", fstype: null, flags: ["bind", "rec"], data: null }];
  }
  if (rootfs.kind === "overlay") return [overlayMount(rootfs, rootless)];
  // The overlay's option paths are the host's: the kernel resolves them before it stacks the
  // overlay on the tmpfs they are in, which then stays reachable through the overlay alone.
  const upper = join(rootDir, "upper");
  const work = join(rootDir, "work");
  return [
    { op: "mount", source: "tmpfs", target: "/", fstype: "tmpfs", flags: [], data: "mode=755" },
    { op: "mkdir", path: "/upper", mode: 0o755 },
    { op: "mkdir", path: "/work", mode: 0o700 },
    // no volatile: a tmpfs has nothing to sync
    overlayMount({ lowers: rootfs.lowers, upper, work }, rootless),
  ];
}

function overlayMount(
  layers: { lowers: readonly string[]; upper: string; work: string; volatile?: boolean },
  rootless: boolean,
): Step {
  const options = [
    ...overlayDirOptions(layers),
    // Rootless: trusted.* xattrs are out of reach, the kernel reads user.overlay.* instead.
    // As root: redirects, so directory renames work and unionfs-written uppers read back.
    rootless ? "userxattr" : "redirect_dir=on",
    ...(layers.volatile === true ? ["volatile"] : []),
  ].join(",");
  if (Buffer.byteLength(options) > MAX_MOUNT_DATA) {
    throw new PlanError(
      `the overlay mount options are ${Buffer.byteLength(options)} bytes, over the kernel's ${MAX_MOUNT_DATA}: ` +
        "use fewer or shorter layer paths, or --driver fuse",
    );
  }
  return { op: "mount", source: "overlay", target: "/", fstype: "overlay", flags: [], data: options };
}

function procAndSys(input: PlanInput): Step[] {
  const sysfsAllowed = !input.rootless || input.net === "none";
  return [
    { op: "mkdir", path: "/proc", mode: 0o755 },
    { op: "mount", source: "proc", target: "/proc", fstype: "proc", flags: ["nosuid", "nodev", "noexec"], data: null },
    { op: "mkdir", path: "/sys", mode: 0o755 },
    sysfsAllowed
      ? {
          op: "mount",
          source: "sysfs",
          target: "/sys",
          fstype: "sysfs",
          flags: ["ro", "nosuid", "nodev", "noexec"],
          data: null,
        }
      : {
          op: "mount",
          source: "/sys",
          target: "/sys",
          fstype: null,
          flags: ["bind", "rec", "ro", "nosuid", "nodev", "noexec"],
          data: null,
        },
  ];
}

function devSteps(rootless: boolean): Step[] {
  const steps: Step[] = [
    { op: "mkdir", path: "/dev", mode: 0o755 },
    {
      op: "mount",
      source: "tmpfs",
      target: "/dev",
      fstype: "tmpfs",
      flags: ["nosuid", "strictatime"],
      data: "mode=755,size=65536k",
    },
  ];
  for (const name of DEVICES) {
    const optional = name === "tty"; // a host without a controlling-terminal device still runs
    steps.push({ op: "file", path: `/dev/${name}` });
    steps.push({
      op: "mount",
      source: `/dev/${name}`,
      target: `/dev/${name}`,
      fstype: null,
      flags: ["bind"],
      data: null,
      optional,
    });
  }
  steps.push(
    { op: "symlink", target: "/proc/self/fd", path: "/dev/fd" },
    { op: "symlink", target: "/proc/self/fd/0", path: "/dev/stdin" },
    { op: "symlink", target: "/proc/self/fd/1", path: "/dev/stdout" },
    { op: "symlink", target: "/proc/self/fd/2", path: "/dev/stderr" },
    { op: "mkdir", path: "/dev/pts", mode: 0o755 },
    {
      op: "mount",
      source: "devpts",
      target: "/dev/pts",
      fstype: "devpts",
      flags: ["nosuid", "noexec"],
      // gid=5 (tty) exists only where the host's groups are mapped
      data: `newinstance,ptmxmode=0666,mode=0620${rootless ? "" : ",gid=5"}`,
    },
    { op: "symlink", target: "pts/ptmx", path: "/dev/ptmx" },
    { op: "mkdir", path: "/dev/shm", mode: 0o1777 },
    {
      op: "mount",
      source: "shm",
      target: "/dev/shm",
      fstype: "tmpfs",
      flags: ["nosuid", "nodev", "noexec"],
      data: "mode=1777,size=65536k",
    },
    { op: "mkdir", path: "/dev/mqueue", mode: 0o755 },
    {
      op: "mount",
      source: "mqueue",
      target: "/dev/mqueue",
      fstype: "mqueue",
      flags: ["nosuid", "nodev", "noexec"],
      data: null,
      optional: true,
    },
  );
  return steps;
}

/** The helper's argument vector (without the program itself). */
export function helperArgs(plan: HelperPlan): string[] {
  const { input } = plan;
  const args = ["--root", input.rootDir, "--ns", plan.namespaces.join(",")];
  if (input.role.kind === "child") args.push("--status-file", input.role.statusFile);
  else {
    args.push("--handover");
    for (const tree of input.role.remove) args.push("--cleanup", tree);
  }
  if (input.errorHint !== undefined) args.push("--hint", input.errorHint.prefix, input.errorHint.text);
  if (plan.mapRoot) args.push("--map-root");
  if (input.init) args.push("--init");
  for (const file of input.cgroupProcs) args.push("--cgroup", file);
  // a kernel overlay inside the run is invisible to the store: the helper holds its layers
  if (input.rootfs.kind !== "bind") for (const dir of input.rootfs.lowers) args.push("--hold", dir);
  if (input.user !== undefined) args.push("--user", input.user);
  if (input.cwd !== undefined) args.push("--cwd", input.cwd);
  for (const entry of input.env) args.push("--env", entry);
  for (const step of plan.steps) args.push(...encodeStep(step));
  args.push("--", ...input.command);
  return args;
}

const dash = (v: string | null): string => (v === null || v === "" ? "-" : v);

export function encodeStep(step: Step): string[] {
  const name = (op: string) => ("optional" in step && step.optional === true ? `?${op}` : op);
  switch (step.op) {
    case "mount":
      return [
        name("mount"),
        dash(step.source),
        step.target,
        dash(step.fstype),
        dash(step.flags.join(",")),
        dash(step.data),
      ];
    case "mkdir":
      return [name("mkdir"), step.path, step.mode.toString(8)];
    case "file":
      return [name("file"), step.path];
    case "symlink":
      return [name("symlink"), step.target, step.path];
    case "readonly":
      return [name("readonly"), step.path];
    case "mask":
      return [name("mask"), step.path];
    case "pivot":
      return ["pivot"];
    case "hostname":
      return ["hostname", step.name];
    case "loopback":
      return ["loopback"];
  }
}

/**
 * The command's environment: PATH and HOSTNAME, then the image's, then -e entries (a bare `K`
 * takes the host's value, or is dropped if the host has none). A later entry replaces an
 * earlier one with the same key in place.
 */
export function buildEnv(
  hostname: string,
  imageEnv: readonly string[],
  userEnv: readonly string[],
  hostEnv: Readonly<Record<string, string | undefined>>,
): string[] {
  const out = new Map<string, string>([
    ["PATH", DEFAULT_PATH],
    ["HOSTNAME", hostname],
  ]);
  const put = (entry: string) => {
    const eq = entry.indexOf("=");
    if (eq > 0) {
      out.set(entry.slice(0, eq), entry.slice(eq + 1));
      return;
    }
    const value = hostEnv[entry];
    if (value !== undefined) out.set(entry, value);
  };
  for (const entry of imageEnv) put(entry);
  for (const entry of userEnv) put(entry);
  return [...out].map(([k, v]) => `${k}=${v}`);
}
