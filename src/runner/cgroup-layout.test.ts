import { describe, expect, it } from "vitest";
import { parseMountInfo } from "../sys/mountinfo.js";
import {
  CgroupPlanError,
  cgroupMounts,
  type Hierarchy,
  parseProcCgroup,
  planCgroupDirs,
  readKeyedCount,
  V1,
  V2,
} from "./cgroup-layout.js";

/** This project's reference machine: v1 controllers plus a cgroup2 with hugetlb only. */
const HYBRID_MOUNTINFO = `31 23 0:28 / /sys/fs/cgroup rw,relatime - tmpfs tmpfs rw,mode=755
32 31 0:29 / /sys/fs/cgroup/cpu rw,relatime - cgroup cgroup rw,cpu
33 31 0:30 / /sys/fs/cgroup/cpuacct rw,relatime - cgroup cgroup rw,cpuacct
35 31 0:32 / /sys/fs/cgroup/memory rw,relatime - cgroup cgroup rw,memory
39 31 0:36 / /sys/fs/cgroup/pids rw,relatime - cgroup cgroup rw,pids
40 31 0:37 / /sys/fs/cgroup/systemd rw,relatime - cgroup cgroup rw,name=systemd
41 31 0:38 / /sys/fs/cgroup/unified rw,relatime - cgroup2 cgroup2 rw
`;
const HYBRID_SELF = `9:name=systemd:/
8:pids:/
4:memory:/process_api/abc
1:cpu:/
0::/
`;

const V2_MOUNTINFO = "25 20 0:22 / /sys/fs/cgroup rw,nosuid,nodev,noexec,relatime - cgroup2 cgroup2 rw,nsdelegate\n";

function hybrid(): Hierarchy[] {
  const h = cgroupMounts(parseMountInfo(HYBRID_MOUNTINFO));
  for (const x of h) if (x.version === 2) x.controllers = ["hugetlb"];
  return h;
}

describe("cgroupMounts / parseProcCgroup", () => {
  it("finds v1 controllers in the super options and the cgroup2 mount", () => {
    const h = cgroupMounts(parseMountInfo(HYBRID_MOUNTINFO));
    expect(h.map((x) => [x.version, x.mountpoint, x.controllers.filter((c) => c !== "rw")])).toEqual([
      [1, "/sys/fs/cgroup/cpu", ["cpu"]],
      [1, "/sys/fs/cgroup/cpuacct", ["cpuacct"]],
      [1, "/sys/fs/cgroup/memory", ["memory"]],
      [1, "/sys/fs/cgroup/pids", ["pids"]],
      [1, "/sys/fs/cgroup/systemd", ["name=systemd"]],
      [2, "/sys/fs/cgroup/unified", []],
    ]);
  });

  it("reads the caller's cgroup per controller and its v2 cgroup", () => {
    const self = parseProcCgroup(HYBRID_SELF);
    expect(self.v1.get("memory")).toBe("/process_api/abc");
    expect(self.v1.get("cpu")).toBe("/");
    expect(self.v2).toBe("/");
    expect(parseProcCgroup("2:cpu,cpuacct:/a\n").v1.get("cpuacct")).toBe("/a");
  });
});

describe("planCgroupDirs", () => {
  const all = { memoryBytes: 64 << 20, cpus: 0.5, pids: 32 };

  it("on a hybrid host takes each controller from its v1 hierarchy, nested in the caller's cgroup", () => {
    const plans = planCgroupDirs(all, hybrid(), parseProcCgroup(HYBRID_SELF), "unionfs-x");
    expect(plans.map((p) => [p.backend.version, p.dir, p.controllers])).toEqual([
      [1, "/sys/fs/cgroup/memory/process_api/abc/unionfs-x", ["memory"]],
      [1, "/sys/fs/cgroup/cpu/unionfs-x", ["cpu"]],
      [1, "/sys/fs/cgroup/pids/unionfs-x", ["pids"]],
    ]);
  });

  it("prefers v2 for a controller the cgroup2 root offers", () => {
    const h = hybrid();
    for (const x of h) if (x.version === 2) x.controllers = ["pids"];
    const plans = planCgroupDirs({ pids: 5 }, h, parseProcCgroup(HYBRID_SELF), "r");
    expect(plans.map((p) => [p.backend.version, p.dir])).toEqual([[2, "/sys/fs/cgroup/unified/r"]]);
  });

  it("on a v2-only host puts all controllers in one cgroup below the root", () => {
    const h = cgroupMounts(parseMountInfo(V2_MOUNTINFO));
    for (const x of h) x.controllers = ["cpuset", "cpu", "io", "memory", "pids"];
    const plans = planCgroupDirs(all, h, parseProcCgroup("0::/user.slice/session-1.scope\n"), "r");
    expect(plans).toHaveLength(1);
    expect(plans[0]).toMatchObject({ dir: "/sys/fs/cgroup/r", controllers: ["memory", "cpu", "pids"] });
    expect(plans[0]?.ancestors).toEqual(["/sys/fs/cgroup"]);
  });

  it("puts the cgroup below --cgroup-parent in every hierarchy", () => {
    const plans = planCgroupDirs({ pids: 3 }, hybrid(), parseProcCgroup(HYBRID_SELF), "r", "/ci/jobs");
    expect(plans[0]?.ancestors).toEqual([
      "/sys/fs/cgroup/pids",
      "/sys/fs/cgroup/pids/ci",
      "/sys/fs/cgroup/pids/ci/jobs",
    ]);
    expect(plans[0]?.dir).toBe("/sys/fs/cgroup/pids/ci/jobs/r");
  });

  it("takes the caller's cgroup relative to a mount of a subtree (inside a container)", () => {
    const h = cgroupMounts(
      parseMountInfo("35 31 0:32 /docker/c1 /sys/fs/cgroup/memory rw - cgroup cgroup rw,memory\n"),
    );
    const plans = planCgroupDirs({ memoryBytes: 1 << 30 }, h, parseProcCgroup("4:memory:/docker/c1/sub\n"), "r");
    expect(plans[0]?.dir).toBe("/sys/fs/cgroup/memory/sub/r");
  });

  it("refuses a limit no hierarchy can enforce, rather than drop it", () => {
    const h = hybrid().filter((x) => !x.controllers.includes("pids"));
    expect(() => planCgroupDirs({ pids: 3 }, h, parseProcCgroup(HYBRID_SELF), "r")).toThrow(CgroupPlanError);
    expect(() => planCgroupDirs({ pids: 3 }, h, parseProcCgroup(HYBRID_SELF), "r")).toThrow(/--pids needs the pids/);
  });

  it("asks for nothing without limits", () => {
    expect(planCgroupDirs({}, hybrid(), parseProcCgroup(HYBRID_SELF), "r")).toEqual([]);
  });
});

describe("backends", () => {
  const limits = { memoryBytes: 64 << 20, cpus: 0.5, pids: 32 };

  it("v1: limit_in_bytes before memsw, cfs period before quota, pids.max", () => {
    expect(V1.limitWrites("/c", limits, ["memory", "cpu", "pids"]).map((w) => [w.file, w.value, !!w.optional])).toEqual(
      [
        ["/c/memory.limit_in_bytes", "67108864", false],
        ["/c/memory.memsw.limit_in_bytes", "67108864", true],
        ["/c/cpu.cfs_period_us", "100000", false],
        ["/c/cpu.cfs_quota_us", "50000", false],
        ["/c/pids.max", "32", false],
      ],
    );
    expect(V1.enableWrites("/", ["memory"])).toEqual([]);
    expect(V1.oomCounter("/c")).toEqual({ file: "/c/memory.oom_control", key: "oom_kill" });
  });

  it("v2: memory.max with no swap, cpu.max, pids.max; controllers enabled in ancestors", () => {
    expect(V2.limitWrites("/c", limits, ["memory", "cpu", "pids"]).map((w) => [w.file, w.value, !!w.optional])).toEqual(
      [
        ["/c/memory.max", "67108864", false],
        ["/c/memory.swap.max", "0", true],
        ["/c/cpu.max", "50000 100000", false],
        ["/c/pids.max", "32", false],
      ],
    );
    expect(V2.enableWrites("/r", ["memory", "pids"])).toMatchObject([
      { file: "/r/cgroup.subtree_control", value: "+memory +pids" },
    ]);
    expect(V2.enableWrites("/r", [])).toEqual([]);
    expect(V2.oomCounter("/c")).toEqual({ file: "/c/memory.events", key: "oom_kill" });
  });

  it("writes only the controllers a hierarchy serves", () => {
    expect(V1.limitWrites("/c", limits, ["pids"]).map((w) => w.file)).toEqual(["/c/pids.max"]);
  });

  it("reads OOM kill counters from memory.events and memory.oom_control", () => {
    expect(readKeyedCount("low 0\nhigh 0\nmax 3\noom 1\noom_kill 1\noom_group_kill 0\n", "oom_kill")).toBe(1);
    expect(readKeyedCount("oom_kill_disable 0\nunder_oom 0\noom_kill 2\n", "oom_kill")).toBe(2);
    expect(readKeyedCount("oom_kill_disable 0\n", "oom_kill")).toBe(0);
  });
});
