import { describe, expect, it } from "vitest";
import { buildEnv, DEFAULT_PATH, encodeStep, helperArgs, PlanError, type PlanInput, planRun } from "./plan.js";

function input(over: Partial<PlanInput> = {}): PlanInput {
  return {
    rootDir: "/run/x/root",
    rootfs: { kind: "overlay", lowers: ["/l1", "/l2"], upper: "/run/x/upper", work: "/run/x/work" },
    rootless: false,
    net: "none",
    hostname: "box",
    env: ["PATH=/bin"],
    init: false,
    cgroupProcs: [],
    command: ["sh", "-c", "echo hi"],
    role: { kind: "child", statusFile: "/run/x/status" },
    ...over,
  };
}

const targets = (p: ReturnType<typeof planRun>) =>
  p.steps.flatMap((s) => (s.op === "mount" ? [s.target] : s.op === "pivot" ? ["PIVOT"] : []));

describe("planRun", () => {
  it("creates mount, pid, uts, ipc and (with --net none) net namespaces; user only rootless", () => {
    expect(planRun(input()).namespaces).toEqual(["mount", "pid", "uts", "ipc", "net"]);
    expect(planRun(input({ net: "host" })).namespaces).toEqual(["mount", "pid", "uts", "ipc"]);
    const rootless = planRun(input({ rootless: true }));
    expect(rootless.namespaces[0]).toBe("user");
    expect(rootless.mapRoot).toBe(true);
  });

  it("mounts the union first, then /proc, /sys, /dev and its parts, then pivots, names the host, brings up lo", () => {
    const plan = planRun(input());
    expect(targets(plan).slice(0, 4)).toEqual(["/", "/proc", "/sys", "/dev"]);
    for (const dev of ["null", "zero", "full", "random", "urandom", "tty", "pts", "shm", "mqueue"]) {
      expect(targets(plan)).toContain(`/dev/${dev}`);
    }
    expect(plan.steps.slice(-3)).toEqual([{ op: "pivot" }, { op: "hostname", name: "box" }, { op: "loopback" }]);
    expect(planRun(input({ net: "host" })).steps.slice(-1)).toEqual([{ op: "hostname", name: "box" }]);
    // nothing is mounted after the pivot: every target is resolved inside the new root
    expect(targets(plan).indexOf("PIVOT")).toBe(targets(plan).length - 1);
  });

  it("mounts kernel overlayfs with escaped paths; userxattr when rootless", () => {
    const root = planRun(input({ rootfs: { kind: "overlay", lowers: ["/a:b", "/c,d"], upper: "/u", work: "/w" } }));
    expect(root.steps[0]).toEqual({
      op: "mount",
      source: "overlay",
      target: "/",
      fstype: "overlay",
      flags: [],
      data: "lowerdir=/a\\:b:/c\\,d,upperdir=/u,workdir=/w,redirect_dir=on",
    });
    const rootless = planRun(input({ rootless: true }));
    expect(rootless.steps[0]).toMatchObject({ data: expect.stringMatching(/,userxattr$/) });
  });

  it("mounts a temporary upper volatile: it is removed afterwards, a sync would be wasted", () => {
    const rootfs = { kind: "overlay", lowers: ["/l"], upper: "/u", work: "/w", volatile: true } as const;
    expect(planRun(input({ rootfs })).steps[0]).toMatchObject({
      data: "lowerdir=/l,upperdir=/u,workdir=/w,redirect_dir=on,volatile",
    });
  });

  it("puts an upper in memory on a tmpfs over the root dir, the overlay stacked on it", () => {
    const plan = planRun(input({ rootDir: "/tmp/run-1", rootfs: { kind: "tmpfs-overlay", lowers: ["/l"] } }));
    expect(plan.steps.slice(0, 4)).toEqual([
      { op: "mount", source: "tmpfs", target: "/", fstype: "tmpfs", flags: [], data: "mode=755" },
      { op: "mkdir", path: "/upper", mode: 0o755 },
      { op: "mkdir", path: "/work", mode: 0o700 },
      {
        op: "mount",
        source: "overlay",
        target: "/",
        fstype: "overlay",
        flags: [],
        // the host's paths of the dirs the steps before made
        data: "lowerdir=/l,upperdir=/tmp/run-1/upper,workdir=/tmp/run-1/work,redirect_dir=on",
      },
    ]);
    expect(targets(plan).slice(0, 3)).toEqual(["/", "/", "/proc"]);
    // the helper holds its layers, as with any kernel overlay
    expect(helperArgs(plan).join(" ")).toContain("--hold /l ");
  });

  it("binds the FUSE mount as the root", () => {
    expect(planRun(input({ rootfs: { kind: "bind", source: "/run/x/merged" } })).steps[0]).toEqual({
      op: "mount",
      source: "/run/x/merged",
      target: "/",
      fstype: null,
      flags: ["bind", "rec"],
      data: null,
    });
  });

  it("refuses overlay options longer than the kernel takes", () => {
    const lowers = Array.from({ length: 200 }, (_, i) => `/var/lib/unionfs/layers/sha256/${i}`.padEnd(60, "x"));
    expect(() => planRun(input({ rootfs: { kind: "overlay", lowers, upper: "/u", work: "/w" } }))).toThrow(PlanError);
  });

  it("mounts a new sysfs unless a rootless run shares the host's network, which gets a read-only bind", () => {
    const sys = (over: Partial<PlanInput>) =>
      planRun(input(over)).steps.find((s) => s.op === "mount" && s.target === "/sys");
    expect(sys({})).toMatchObject({ source: "sysfs", fstype: "sysfs", flags: ["ro", "nosuid", "nodev", "noexec"] });
    expect(sys({ rootless: true, net: "none" })).toMatchObject({ fstype: "sysfs" });
    expect(sys({ rootless: true, net: "host" })).toMatchObject({
      source: "/sys",
      flags: expect.arrayContaining(["bind", "ro"]),
    });
  });

  it("gives devpts the tty group only where host groups are mapped", () => {
    const pts = (rootless: boolean) =>
      planRun(input({ rootless })).steps.find((s) => s.op === "mount" && s.target === "/dev/pts");
    expect(pts(false)).toMatchObject({ data: "newinstance,ptmxmode=0666,mode=0620,gid=5" });
    expect(pts(true)).toMatchObject({ data: "newinstance,ptmxmode=0666,mode=0620" });
  });

  it("masks kernel-wide /proc files, all optional", () => {
    const plan = planRun(input());
    const masks = plan.steps.filter((s) => s.op === "mask" || s.op === "readonly");
    expect(masks.map((s) => ("path" in s ? s.path : ""))).toContain("/proc/sys");
    expect(masks.every((s) => "optional" in s && s.optional === true)).toBe(true);
  });
});

describe("helperArgs", () => {
  it("puts process settings first, steps next, the command after --", () => {
    const args = helperArgs(
      planRun(
        input({
          init: true,
          user: "nobody",
          cwd: "/app",
          cgroupProcs: ["/cg/memory/r/cgroup.procs", "/cg/pids/r/cgroup.procs"],
          env: ["PATH=/bin", "A=1"],
        }),
      ),
    );
    expect(args.slice(0, 26)).toEqual([
      "--root",
      "/run/x/root",
      "--ns",
      "mount,pid,uts,ipc,net",
      "--status-file",
      "/run/x/status",
      "--init",
      "--cgroup",
      "/cg/memory/r/cgroup.procs",
      "--cgroup",
      "/cg/pids/r/cgroup.procs",
      "--hold",
      "/l1",
      "--hold",
      "/l2",
      "--user",
      "nobody",
      "--cwd",
      "/app",
      "--env",
      "PATH=/bin",
      "--env",
      "A=1",
      "mount",
      "overlay",
      "/",
    ]);
    expect(args.slice(-4)).toEqual(["--", "sh", "-c", "echo hi"]);
  });

  it("in place of unionfs run, reports on stderr and names the trees to remove; passes the hint", () => {
    const args = helperArgs(
      planRun(
        input({
          role: { kind: "handover", remove: ["/run/x", "/my/upper"] },
          errorHint: { prefix: "mount overlay on /:", text: "see the kernel log" },
        }),
      ),
    );
    expect(args.slice(0, 12)).toEqual([
      "--root",
      "/run/x/root",
      "--ns",
      "mount,pid,uts,ipc,net",
      "--handover",
      "--cleanup",
      "/run/x",
      "--cleanup",
      "/my/upper",
      "--hint",
      "mount overlay on /:",
      "see the kernel log",
    ]);
    expect(args).not.toContain("--status-file");
  });

  it("encodes each step with a fixed number of words, '-' for none and '?' for optional", () => {
    expect(encodeStep({ op: "mount", source: null, target: "/x", fstype: "tmpfs", flags: [], data: null })).toEqual([
      "mount",
      "-",
      "/x",
      "tmpfs",
      "-",
      "-",
    ]);
    expect(encodeStep({ op: "mkdir", path: "/dev/shm", mode: 0o1777 })).toEqual(["mkdir", "/dev/shm", "1777"]);
    expect(encodeStep({ op: "mask", path: "/proc/kcore", optional: true })).toEqual(["?mask", "/proc/kcore"]);
    expect(encodeStep({ op: "symlink", target: "pts/ptmx", path: "/dev/ptmx" })).toEqual([
      "symlink",
      "pts/ptmx",
      "/dev/ptmx",
    ]);
  });
});

describe("buildEnv", () => {
  it("starts from PATH and HOSTNAME, then the image's, then -e; later keys replace earlier ones", () => {
    expect(buildEnv("box", ["PATH=/bin", "LANG=C"], ["A=1", "LANG=en", "HOME", "MISSING"], { HOME: "/root" })).toEqual([
      "PATH=/bin",
      "HOSTNAME=box",
      "LANG=en",
      "A=1",
      "HOME=/root",
    ]);
    expect(buildEnv("h", [], [], {})).toEqual([`PATH=${DEFAULT_PATH}`, "HOSTNAME=h"]);
  });
});
