/**
 * `unionfs run` for real, as root: the built CLI in a child process, on a busybox rootfs, with
 * both drivers. Every test ends by checking that nothing of the run is left: no mount under the
 * test's dir, no run dir in its TMPDIR, no cgroup of the run in /sys/fs/cgroup.
 */
import { execFileSync, spawn } from "node:child_process";
import { createHash } from "node:crypto";
import {
  chownSync,
  lstatSync,
  mkdirSync,
  readdirSync,
  readFileSync,
  readlinkSync,
  rmdirSync,
  statSync,
  writeFileSync,
} from "node:fs";
import { basename, join } from "node:path";
import { fileURLToPath } from "node:url";
import { afterAll, afterEach, beforeAll, beforeEach, describe, expect, it } from "vitest";
import { buildRootfs, busyboxMissing, ROOTFS_HOSTNAME_FILE } from "../../tools/build-rootfs.mjs";
import { isAlive } from "../sys/process-watch.js";
import { CLI_BIN, CLI_MAIN, type Running, type RunResult, startCommand } from "../testing/cli-run.js";
import { waitUntil } from "../testing/processes.js";
import {
  cgroupsNamed,
  cpuSeconds,
  descendants,
  ensureHelperBuilt,
  runProcess,
  sweepCgroups,
  sweepEmptyRunCgroups,
} from "../testing/run-fixture.js";
import { mountsUnder, Scratch, useScratch } from "../testing/scratch.js";
import { WAITER } from "./run.js";

const IS_ROOT = process.getuid?.() === 0;
const SAMPLE = fileURLToPath(new URL("../../testdata/sample", import.meta.url));
const BUILD_TEST_IMAGE = fileURLToPath(new URL("../../tools/build-test-image.mjs", import.meta.url));
const RUN_TIMEOUT_MS = 45_000;
/** A cgroup v1 pids hierarchy, where a directory can be delegated with a chown. */
const V1_PIDS = readFileSync("/proc/self/mountinfo", "utf8")
  .split("\n")
  .find((l) => / - cgroup cgroup [^ ]*\bpids\b/.test(l))
  ?.split(" ")[4];

describe.skipIf(!IS_ROOT || busyboxMissing() !== null)("unionfs run (as root)", () => {
  let fixtures: Scratch;
  let rootfs: string;
  beforeAll(() => {
    ensureHelperBuilt();
    fixtures = new Scratch("unionfs-run-fixtures-");
    rootfs = buildRootfs(fixtures.path("rootfs"));
  });
  afterAll(async () => {
    await fixtures?.cleanup();
  });

  const scratch = useScratch("unionfs-run-test-");
  /** run ids seen in the current test, for the cgroup sweep */
  let seenIds: string[] = [];
  let testStart = 0;
  beforeEach(() => {
    testStart = Date.now() - 1_000;
  });
  afterEach(async (ctx) => {
    // A test that failed half-way may leave a run going: SIGKILL it, and its helper (orphaned)
    // kills the command and removes its cgroup and run dir, its FUSE daemon unmounts.
    let killed = false;
    for (const r of started.splice(0)) {
      if (r.child.exitCode === null && r.child.signalCode === null) {
        r.child.kill("SIGKILL");
        killed = true;
      }
      await r.result.catch(() => {});
    }
    // the FUSE daemon notices within its watch interval; then the scratch finds nothing mounted
    if (killed) await waitUntil(() => mountsUnder(scratch().root).length === 0, 5_000);
    const ids = seenIds;
    seenIds = [];
    const swept: string[] = [];
    for (const id of ids) swept.push(...(await sweepCgroups(`unionfs-${id}`)));
    // Only after a failure: a run of another suite that is still setting up has an empty
    // cgroup too, and removing it would fail that run.
    if (ctx.task.result?.state === "fail") swept.push(...sweepEmptyRunCgroups(testStart));
    if (swept.length > 0) throw new Error(`cgroups left behind and removed: ${swept.join(", ")}`);
  });

  function env(s: Scratch): Record<string, string> {
    return { TMPDIR: s.mkdir("tmp"), UNIONFS_RUNTIME_DIR: s.runtimeDir };
  }

  function start(args: string[], opts: { user?: { uid: number; gid: number }; tmp?: string } = {}) {
    const s = scratch();
    const e = env(s);
    if (opts.tmp !== undefined) e.TMPDIR = opts.tmp;
    return startRun(["run", ...args], { env: e, timeoutMs: RUN_TIMEOUT_MS, ...(opts.user ? { user: opts.user } : {}) });
  }

  async function run(args: string[], opts: { user?: { uid: number; gid: number }; tmp?: string } = {}) {
    return start(args, opts).result;
  }

  /** Nothing of a finished run may remain. `id` names its cgroup when it had limits. */
  function expectNothingLeft(id?: string, tmp?: string): void {
    const s = scratch();
    expect(mountsUnder(s.root)).toEqual([]);
    expect(readdirSync(tmp ?? s.path("tmp")).filter((n) => n.startsWith("unionfs-run-"))).toEqual([]);
    if (id !== undefined) expect(cgroupsNamed(`unionfs-${id}`)).toEqual([]);
  }

  /** The run id, which is the default host name: the first line of a payload that prints it. */
  function firstLineId(result: RunResult): string {
    const id = result.stdout.split("\n")[0] ?? "";
    expect(id).toMatch(/^[0-9a-f]{12}$/);
    seenIds.push(id);
    return id;
  }

  describe.each(["overlay", "fuse"] as const)("--driver %s", (driver) => {
    const lower = () => ["--driver", driver, "--lower", rootfs];

    it("runs the command as PID 1 with the host name set, seeing neither host processes nor host mounts", async () => {
      const script = [
        "echo pid=$$",
        "hostname",
        "ls /proc | grep -c '^[0-9]'",
        "cut -d' ' -f5 /proc/self/mountinfo",
      ].join("; ");
      const r = await run([...lower(), "--hostname", "box", "--", "sh", "-c", script]);
      expect(r.stderr).toBe("");
      expect(r.code).toBe(0);
      const [pid, hostname, processes, ...mounts] = r.stdout.trim().split("\n");
      expect(pid).toBe("pid=1");
      expect(hostname).toBe("box");
      // sh, ls, grep, cut at most: the host's hundreds of processes are not there
      expect(Number(processes)).toBeLessThanOrEqual(4);
      expect(mounts[0]).toBe("/");
      for (const m of mounts) expect(m).toMatch(/^\/(proc|sys|dev)(\/|$)|^\/$/);
      expectNothingLeft();
    });

    it("cannot reach the host's files: /etc/hostname is the image's, the old root is gone", async () => {
      const s = scratch();
      writeFileSync(s.path("host-marker"), "host\n");
      const script = `cat /etc/hostname; test -e ${s.path("host-marker")} && echo MARKER; readlink /proc/1/root; ls /`;
      const r = await run([...lower(), "--", "sh", "-c", script]);
      expect(r.code).toBe(0);
      const lines = r.stdout.trim().split("\n");
      expect(`${lines[0]}\n`).toBe(ROOTFS_HOSTNAME_FILE);
      expect(readFileSync("/etc/hostname", "utf8")).not.toBe(ROOTFS_HOSTNAME_FILE);
      expect(lines).not.toContain("MARKER");
      expect(lines[1]).toBe("/");
      expect(lines.slice(2).sort()).toEqual(readdirSync(rootfs).sort());
      expectNothingLeft();
    });

    it("writes to the upper and never to the lowers", async () => {
      const s = scratch();
      const app = s.path("app");
      const base = s.path("base");
      execFileSync("cp", ["-a", join(SAMPLE, "app"), app]);
      execFileSync("cp", ["-a", join(SAMPLE, "base"), base]);
      const before = [rootfs, app, base].map(treeDigest);
      const upper = s.path("upper");
      const script = "echo new > /created; echo more >> /etc/os-release; rm /app/helper.txt; mkdir /d; cat /app/run.sh";
      const r = await run([
        "--driver",
        driver,
        "--lower",
        `${rootfs}:${app}:${base}`,
        "--upper",
        upper,
        "--",
        "sh",
        "-c",
        script,
      ]);
      expect(r.stderr).toBe("");
      expect(r.code).toBe(0);
      expect([rootfs, app, base].map(treeDigest)).toEqual(before);
      expect(readFileSync(join(upper, "created"), "utf8")).toBe("new\n");
      expect(readFileSync(join(upper, "etc/os-release"), "utf8")).toMatch(/more\n$/);
      const whiteout = lstatSync(join(upper, "app/helper.txt"));
      expect(whiteout.isCharacterDevice() && whiteout.rdev === 0).toBe(true);
      expect(lstatSync(join(upper, "d")).isDirectory()).toBe(true);
      expectNothingLeft();
    });

    it("passes exit codes, signals and stdin/stdout/stderr through", async () => {
      const exit3 = await run([...lower(), "--", "sh", "-c", "echo out; echo err >&2; exit 3"]);
      expect([exit3.code, exit3.stdout, exit3.stderr]).toEqual([3, "out\n", "err\n"]);
      // the ES module CLI, without the launcher and its bundle, runs it alike
      const viaMain = await startCommand(
        process.execPath,
        [CLI_MAIN, "run", ...lower(), "--", "sh", "-c", "echo out; echo err >&2; exit 3"],
        { env: env(scratch()), timeoutMs: RUN_TIMEOUT_MS },
      ).result;
      expect([viaMain.code, viaMain.stdout, viaMain.stderr]).toEqual([3, "out\n", "err\n"]);
      // killed by a signal inside: 128+15 (with --init, so the command is not PID 1, which
      // the kernel protects from signals it has no handler for)
      const term = await run([...lower(), "--init", "--", "sh", "-c", "echo pid=$$; kill -TERM $$; sleep 5"]);
      expect(term.stdout).toBe("pid=2\n");
      expect(term.code).toBe(143);
      const stdin = await runWithInput(
        ["run", ...lower(), "--", "sh", "-c", "read line; echo got:$line"],
        "hello\n",
        env(scratch()),
      );
      expect(stdin).toEqual({ code: 0, stdout: "got:hello\n" });
      expectNothingLeft();
    });

    it("forwards signals given to unionfs run to the command", async () => {
      // PID 1 with a handler gets the signal
      const trap = start([
        ...lower(),
        "--",
        "sh",
        "-c",
        "trap 'echo alarm' ALRM; trap 'echo caught; exit 42' TERM; echo ready; while :; do sleep 1; done",
      ]);
      await waitForLine(trap, "ready");
      await signalsPassedOn(trap, driver);
      // SIGALRM too: Node's default for it would end unionfs run instead
      trap.child.kill("SIGALRM");
      await waitForLine(trap, "alarm");
      trap.child.kill("SIGTERM");
      const trapped = await trap.result;
      expect([trapped.code, trapped.stdout]).toEqual([42, "ready\nalarm\ncaught\n"]);
      // with --init, the init passes it on to a command without a handler: 128+15
      const init = start([...lower(), "--init", "--", "sh", "-c", "echo ready; exec sleep 60"]);
      await waitForLine(init, "ready");
      await signalsPassedOn(init, driver);
      init.child.kill("SIGTERM");
      expect((await init.result).code).toBe(143);
      expectNothingLeft();
    });

    it("starts the command with no signal blocked or ignored, in a session of its own", async () => {
      // what cat sees is what the helper gave it (Node blocks every signal for its exec, and
      // ignores SIGPIPE): cat changes none of it
      const r = await run([...lower(), "--", "cat", "/proc/self/status", "/proc/self/stat"]);
      expect(r.code).toBe(0);
      expect(r.stdout).toMatch(/^SigBlk:\s+0+$/m);
      expect(r.stdout).toMatch(/^SigIgn:\s+0+$/m);
      const stat = r.stdout.trim().split("\n").at(-1) ?? "";
      const session = stat.slice(stat.lastIndexOf(")") + 2).split(" ")[3];
      expect([stat.split(" ")[0], session]).toEqual(["1", "1"]);
    });

    it("kills a command that ignores signals at the third SIGTERM, and cleans up", async () => {
      // sh as PID 1 has no handler for SIGTERM, so the kernel drops the first two
      const r = start([...lower(), "--", "sh", "-c", "echo ready; while :; do sleep 1; done"]);
      await waitForLine(r, "ready");
      await signalsPassedOn(r, driver);
      for (let i = 0; i < 3; i++) {
        r.child.kill("SIGTERM");
        // apart, or the kernel merges them into one pending signal
        await new Promise((done) => setTimeout(done, 200));
      }
      const result = await r.result;
      expect([result.code, result.stdout]).toEqual([137, "ready\n"]);
      expectNothingLeft();
    });

    it("reports 137 for a SIGKILLed command and cleans up all the same", async () => {
      const r = start([...lower(), "--pids", "64", "--", "sh", "-c", "hostname; echo ready; exec sleep 60"]);
      process.kill(await readyPayload(r), "SIGKILL");
      const result = await r.result;
      expect(result.code).toBe(137);
      expectNothingLeft(firstLineId(result));
    });

    it("kills a 200 MiB allocation under --memory 64m: exit 137", async () => {
      // busybox dd allocates its whole block (bs) and fills it from /dev/zero: real anonymous memory
      const r = await run([
        ...lower(),
        "--memory",
        "64m",
        "--",
        "sh",
        "-c",
        "hostname; exec dd if=/dev/zero of=/dev/null bs=200M count=1",
      ]);
      expect(r.code).toBe(137);
      expect(r.stderr).toMatch(/memory limit of 64m was reached/);
      expectNothingLeft(firstLineId(r));
    });
  });

  it("holds a busy loop under --cpus 0.5 to at most 0.6 CPU", { timeout: 180_000 }, async () => {
    const r = start([
      "--driver",
      "overlay",
      "--lower",
      rootfs,
      "--cpus",
      "0.5",
      "--",
      "sh",
      "-c",
      "hostname; echo ready; while :; do :; done",
    ]);
    const pid = await readyPayload(r);
    expect(readFileSync(`/proc/${pid}/cgroup`, "utf8")).toMatch(/:cpu[,:].*unionfs-/);
    // Measured over a fixed amount of CPU time, not of wall time: however busy the machine,
    // the quota makes 1 s of CPU take at least ~2 s, and a loaded machine only makes it longer.
    const t0 = performance.now();
    const c0 = cpuSeconds(pid);
    while (cpuSeconds(pid) - c0 < 1) await new Promise((resolve) => setTimeout(resolve, 50));
    const used = (cpuSeconds(pid) - c0) / ((performance.now() - t0) / 1000);
    process.kill(pid, "SIGKILL");
    const result = await r.result;
    expect(used).toBeLessThanOrEqual(0.6);
    expect(result.code).toBe(137);
    expectNothingLeft(firstLineId(result));
  });

  it("contains a fork loop under --pids 32", async () => {
    const script = "hostname; i=0; while [ $i -lt 200 ]; do sleep 100000 & echo $i; i=$((i+1)); done";
    const r = await run(["--driver", "overlay", "--lower", rootfs, "--pids", "32", "--", "sh", "-c", script]);
    const forked = r.stdout.trim().split("\n").slice(1).map(Number);
    // the shell itself is one of the 32; its sleeps take the rest, then fork fails and sh exits
    expect(Math.max(...forked)).toBeLessThan(32);
    expect(Math.max(...forked)).toBeGreaterThan(20);
    expect(r.stderr).toMatch(/can't fork/);
    expect(r.code).not.toBe(0);
    // PID 1's exit took the sleeps with it: had they outlived it, the run would still be waiting
    expectNothingLeft(firstLineId(r));
  });

  it("runs an image from the layer store", async () => {
    const s = scratch();
    const store = s.path("store");
    execFileSync(process.execPath, [BUILD_TEST_IMAGE, s.path("image.tar")]);
    execFileSync(process.execPath, [CLI_MAIN, "image", "import", "--store", store, s.path("image.tar")], {
      env: { ...process.env, ...env(s) },
    });
    const r = await run([
      "--driver",
      "overlay",
      "--image",
      "unionfs-test:latest",
      "--store",
      store,
      "--",
      "sh",
      "-c",
      "cat /etc/hostname; ls /app; echo $PATH",
    ]);
    expect(r.stderr).toBe("");
    expect(r.stdout).toBe("hostname=base\nconfig.json\nhelper.txt\nrun.sh\n/bin\n");
    expectNothingLeft();
  });

  it("reaps orphans with --init, and removes --upper afterwards with --rm", async () => {
    const s = scratch();
    const upper = s.path("upper");
    // An orphan goes to PID 1. Here the command execs `sleep`, which never reaps: without
    // --init the orphan stays a zombie; with --init, the init reaps it.
    const script = "sh -c 'sleep 0.1 &'; (sleep 1; ps -o stat | grep -c '^Z') & exec sleep 1.5";
    const lower = ["--driver", "overlay", "--lower", rootfs];
    const bare = await run([...lower, "--", "sh", "-c", script]);
    expect([bare.code, bare.stdout]).toEqual([0, "1\n"]);
    const init = await run([...lower, "--upper", upper, "--rm", "--init", "--", "sh", "-c", script]);
    expect([init.code, init.stdout]).toEqual([0, "0\n"]);
    expect(readdirSync(s.root)).not.toContain("upper");
    expect(readdirSync(s.root)).not.toContain(".upper.work");
    expectNothingLeft();
  });

  it("with --driver overlay and no limits, hands the run to the helper and only waits for it", async () => {
    const script = "hostname; echo ready; exec sleep 60";
    const plain = start(["--driver", "overlay", "--lower", rootfs, "--", "sh", "-c", script]);
    const limited = start(["--driver", "overlay", "--lower", rootfs, "--pids", "64", "--", "sh", "-c", script]);
    const [payload, limitedPayload] = await Promise.all([readyPayload(plain), readyPayload(limited)]);
    // unionfs run became the waiter (its exec may finish after the command started); the
    // helper, its child, cleans up
    const exe = (pid: number | undefined) => readlinkSync(`/proc/${pid}/exe`);
    expect(await waitUntil(() => exe(plain.child.pid) === WAITER, 5_000)).toBe(true);
    // a cgroup to remove afterwards: Node stays
    expect(exe(limited.child.pid)).toBe(process.execPath);
    process.kill(limitedPayload, "SIGKILL");
    const limitedResult = await limited.result;
    expect([limitedResult.code, limitedResult.stderr]).toEqual([137, ""]);
    // even with the waiter SIGKILLed, the helper takes the command along and removes the run dir
    plain.child.kill("SIGKILL");
    await plain.result;
    expect(await waitUntil(() => !isAlive(payload), 5_000)).toBe(true);
    const runDirs = () => readdirSync(scratch().path("tmp")).filter((n) => n.startsWith("unionfs-run-"));
    expect(await waitUntil(() => runDirs().length === 0, 5_000)).toBe(true);
    expectNothingLeft(firstLineId(limitedResult));
  });

  it("keeps a temporary upper in memory (nothing of the run on disk), an --upper on disk, synced", async () => {
    const s = scratch();
    const script = "head -c 1048576 /dev/zero > /big; echo ready; exec sleep 60";
    const running = start(["--driver", "overlay", "--lower", rootfs, "--", "sh", "-c", script]);
    const payload = await readyPayload(running);
    expect(statSync(`/proc/${payload}/root/big`).size).toBe(1048576);
    const rootMount = readFileSync(`/proc/${payload}/mountinfo`, "utf8")
      .split("\n")
      .find((l) => l.split(" ")[4] === "/");
    // the overlay's upper is a dir of the run dir, yet on the host the run dir holds nothing:
    // the upper is on a tmpfs that exists only in the run's mount namespace
    const runDirs = readdirSync(s.path("tmp"));
    expect(runDirs).toHaveLength(1);
    const runDir = join(s.path("tmp"), runDirs[0] ?? "");
    expect(rootMount).toContain(`upperdir=${runDir}/upper,`);
    expect(readdirSync(runDir)).toEqual([]);
    // a tmpfs has nothing to sync
    expect(rootMount).not.toMatch(/volatile/);
    process.kill(payload, "SIGKILL");
    expect((await running.result).code).toBe(137);
    const kept = await run([
      "--driver",
      "overlay",
      "--lower",
      rootfs,
      "--upper",
      s.path("upper"),
      "--",
      "sh",
      "-c",
      "grep ' / / ' /proc/self/mountinfo",
    ]);
    expect(kept.code).toBe(0);
    expect(kept.stdout).toMatch(/ - overlay overlay /);
    expect(kept.stdout).not.toMatch(/volatile/);
    expectNothingLeft();
  });

  it("says clearly why a run cannot start, and leaves nothing", async () => {
    const missing = await run(["--driver", "overlay", "--lower", rootfs, "--", "/no/such/command"]);
    expect([missing.code, missing.stderrLines]).toEqual([
      127,
      ["unionfs: exec /no/such/command: No such file or directory"],
    ]);
    const cwd = await run(["--driver", "overlay", "--lower", rootfs, "-w", "/nope", "--", "true"]);
    expect([cwd.code, cwd.stderrLines]).toEqual([125, ["unionfs: chdir /nope: No such file or directory"]]);
    const user = await run(["--driver", "overlay", "--lower", rootfs, "--user", "ghost", "--", "true"]);
    expect([user.code, user.stderrLines]).toEqual([125, ["unionfs: no user 'ghost' in the image's /etc/passwd"]]);
    const lowerGone = await run(["--driver", "overlay", "--lower", scratch().path("nope"), "--", "true"]);
    expect(lowerGone.code).toBe(125);
    expect(lowerGone.stderrLines[0]).toMatch(/^unionfs: run: lower layer .*nope: ENOENT/);
    expectNothingLeft();
    // an upper on overlayfs, which the kernel refuses as an upper: its errno alone (EINVAL)
    // would not say why
    const s = scratch();
    const onOverlay = s.mkdir("on-overlay");
    for (const d of ["l", "u", "w"]) s.mkdir(`ovl-${d}`);
    const options = `lowerdir=${s.path("ovl-l")},upperdir=${s.path("ovl-u")},workdir=${s.path("ovl-w")}`;
    execFileSync("mount", ["-t", "overlay", "overlay", "-o", options, onOverlay]);
    s.onCleanup(() => {
      execFileSync("umount", [onOverlay]);
    });
    const refused = await run([
      "--driver",
      "overlay",
      "--lower",
      rootfs,
      "--upper",
      join(onOverlay, "up"),
      "--",
      "true",
    ]);
    expect([refused.code, refused.stderrLines.length]).toEqual([125, 1]);
    expect(refused.stderrLines[0]).toMatch(
      /^unionfs: mount overlay on \/: Invalid argument \(the kernel log says why; .*on-overlay\/up is on a file system overlayfs cannot write to, .*set TMPDIR or --upper elsewhere, or use --driver fuse\)$/,
    );
    // a TMPDIR there is fine: as root the temporary upper is in memory, TMPDIR holds only the
    // run's mount point
    const inMemory = await run(["--driver", "overlay", "--lower", rootfs, "--", "true"], { tmp: onOverlay });
    expect([inMemory.code, inMemory.stderr]).toEqual([0, ""]);
    expect(readdirSync(onOverlay).sort()).toEqual([".up.work", "up"]);
  });

  it("switches user and directory, and gives the command only the environment it was given", async () => {
    const r = await run([
      "--driver",
      "overlay",
      "--lower",
      rootfs,
      "--user",
      "nobody",
      "-w",
      "/tmp",
      "-e",
      "A=1",
      "--",
      "sh",
      "-c",
      "id; pwd; env | sort; grep CapBnd /proc/self/status",
    ]);
    expect(r.code).toBe(0);
    const lines = r.stdout.trim().split("\n");
    expect(lines[0]).toBe("uid=65534(nobody) gid=65534(nogroup) groups=65534(nogroup)");
    expect(lines[1]).toBe("/tmp");
    expect(lines.filter((l) => /^[A-Z]+=/.test(l)).map((l) => l.split("=")[0])).toEqual([
      "A",
      "HOME",
      "HOSTNAME",
      "PATH",
      "PWD",
      "SHLVL",
    ]);
    // docker's default capability set, not the full one
    expect(lines.find((l) => l.startsWith("CapBnd:"))).toBe("CapBnd:\t00000000a80425fb");
    expectNothingLeft();
  });

  it("holds its layers while it runs, so the layer store sees them in use (--driver overlay)", async () => {
    // --init: as PID 1 the sleep would ignore the SIGTERM that ends the run below
    const r = start([
      "--driver",
      "overlay",
      "--init",
      "--lower",
      rootfs,
      "--",
      "sh",
      "-c",
      "echo ready; exec sleep 60",
    ]);
    await waitForLine(r, "ready");
    await signalsPassedOn(r, "overlay");
    const exclusive = () => {
      try {
        execFileSync("flock", ["--nonblock", "--exclusive", rootfs, "true"]);
        return true;
      } catch {
        return false;
      }
    };
    expect(exclusive()).toBe(false);
    r.child.kill("SIGTERM");
    expect((await r.result).code).toBe(143);
    expect(exclusive()).toBe(true);
  });

  it.each(["overlay", "fuse"] as const)(
    "--driver %s: takes the command, its cgroup and its mount along when unionfs run itself is SIGKILLed",
    async (driver) => {
      const r = start([
        "--driver",
        driver,
        "--lower",
        rootfs,
        "--pids",
        "16",
        "--",
        "sh",
        "-c",
        "hostname; echo ready; exec sleep 60",
      ]);
      const payload = await readyPayload(r);
      r.child.kill("SIGKILL");
      const result = await r.result;
      const id = firstLineId(result);
      expect(await waitUntil(() => !isAlive(payload), 5_000)).toBe(true);
      expect(await waitUntil(() => cgroupsNamed(`unionfs-${id}`).length === 0, 5_000)).toBe(true);
      // what is left is the run dir in TMPDIR (the caller's to clean), never a mount on the host:
      // the FUSE daemon of --driver fuse watches the runner and unmounts when it is gone
      expect(await waitUntil(() => mountsUnder(scratch().root).length === 0, 5_000)).toBe(true);
    },
  );

  it("undoes the set-up when a signal comes before the command started", async () => {
    const s = scratch();
    const r = start(["--lower", rootfs, "--", "sh", "-c", "echo started"]);
    // the run dir exists from the start of the set-up; the FUSE daemon takes a while to mount
    expect(await waitUntil(() => readdirSync(s.path("tmp")).some((n) => n.startsWith("unionfs-run-")), 20_000)).toBe(
      true,
    );
    r.child.kill("SIGTERM");
    const result = await r.result;
    expect([result.code, result.stdout]).toEqual([143, ""]);
    expectNothingLeft();
  });

  it("gives --net none a private network with lo up, and --net host the host's", async () => {
    const lower = ["--driver", "overlay", "--lower", rootfs];
    const none = await run([...lower, "--", "ip", "-o", "link"]);
    expect(none.code).toBe(0);
    expect(none.stdout.trim().split("\n")).toEqual([expect.stringMatching(/^1: lo: <LOOPBACK,UP,LOWER_UP>/)]);
    const host = await run([...lower, "--net", "host", "--", "ls", "/sys/class/net"]);
    expect(host.stdout.trim().split("\n").sort()).toEqual(readdirSync("/sys/class/net").sort());
    // the process that made the namespace in parallel is gone once the command runs in it:
    // the run is the helper and the command, nothing else
    const running = start([...lower, "--", "sh", "-c", "echo ready; exec sleep 60"]);
    const payload = await readyPayload(running);
    expect(readlinkSync(`/proc/${payload}/ns/net`)).not.toBe(readlinkSync("/proc/self/ns/net"));
    const others = () => descendants(running.child.pid as number).filter((p) => p !== payload);
    expect(await waitUntil(() => others().length === 1, 5_000)).toBe(true);
    expect(readlinkSync(`/proc/${others()[0]}/exe`)).toMatch(/\/native\/build\/unionfs-run$/);
    process.kill(payload, "SIGKILL");
    expect((await running.result).code).toBe(137);
    expectNothingLeft();
  });

  describe("rootless (as nobody)", () => {
    const nobody = { uid: 65534, gid: 65534 };
    function nobodyTmp(): string {
      const dir = scratch().mkdir("tmp-nobody");
      chownSync(dir, nobody.uid, nobody.gid);
      return dir;
    }

    it("maps the caller to root in a user namespace and runs on kernel overlayfs", async () => {
      const tmp = nobodyTmp();
      const script =
        "id -u; echo pid=$$; cat /proc/self/uid_map; echo x > /written && cat /written; grep ' / / ' /proc/self/mountinfo";
      const r = await run(["--driver", "overlay", "--lower", rootfs, "--", "sh", "-c", script], { user: nobody, tmp });
      expect(r.stderr).toBe("");
      expect(r.code).toBe(0);
      const lines = r.stdout.trim().split("\n");
      expect(lines.slice(0, 2)).toEqual(["0", "pid=1"]);
      expect(lines[2]?.trim().split(/\s+/)).toEqual(["0", "65534", "1"]);
      expect(lines[3]).toBe("x");
      // rootless, the temporary upper is on disk (user.* xattrs on tmpfs are too new), unsynced:
      // "volatile", or "fsync=volatile" on newer kernels
      expect(lines[4]).toMatch(new RegExp(`upperdir=${tmp}/unionfs-run-[^/]+/upper,.*[,=]volatile\\b`));
      expectNothingLeft(undefined, tmp);
    });

    it("takes the command along when unionfs run is SIGKILLed", async () => {
      const tmp = nobodyTmp();
      const s = scratch();
      const r = startRun(
        ["run", "--driver", "overlay", "--lower", rootfs, "--", "sh", "-c", "echo ready; exec sleep 60"],
        {
          env: { ...env(s), TMPDIR: tmp },
          user: nobody,
          timeoutMs: RUN_TIMEOUT_MS,
        },
      );
      // setpriv execs node: the CLI is the child itself
      const payload = await readyPayload(r);
      r.child.kill("SIGKILL");
      await r.result;
      expect(await waitUntil(() => !isAlive(payload), 5_000)).toBe(true);
    });

    it("refuses limits without a delegated cgroup, with a clear error", async () => {
      const tmp = nobodyTmp();
      const r = await run(["--driver", "overlay", "--lower", rootfs, "--memory", "64m", "--", "true"], {
        user: nobody,
        tmp,
      });
      expect(r.code).toBe(125);
      expect(r.stderrLines).toEqual([
        expect.stringMatching(/^unionfs: run: --memory.*need a cgroup.*--cgroup-parent$/),
      ]);
      expectNothingLeft(undefined, tmp);
    });

    it.skipIf(!V1_PIDS)("applies limits in a cgroup delegated to the caller (--cgroup-parent)", async () => {
      const tmp = nobodyTmp();
      const name = `unionfs-test-delegated-${process.pid}`;
      const parent = join(V1_PIDS as string, name);
      mkdirSync(parent);
      scratch().onCleanup(() => rmdirSync(parent));
      for (const f of ["", "cgroup.procs", "tasks"]) chownSync(join(parent, f), nobody.uid, nobody.gid);
      const script = "grep pids /proc/self/cgroup; i=0; while [ $i -lt 20 ]; do sleep 9 & i=$((i+1)); done";
      const r = await run(
        [
          "--driver",
          "overlay",
          "--lower",
          rootfs,
          "--pids",
          "8",
          "--cgroup-parent",
          `/${name}`,
          "--",
          "sh",
          "-c",
          script,
        ],
        {
          user: nobody,
          tmp,
        },
      );
      expect(r.stdout).toMatch(new RegExp(`:pids:/${name}/unionfs-[0-9a-f]{12}\n`));
      expect(r.stderr).toMatch(/can't fork/);
      expect(r.code).not.toBe(0);
      expect(readdirSync(parent).filter((n) => n.startsWith("unionfs-"))).toEqual([]);
      expectNothingLeft(undefined, tmp);
    });

    it("with --driver fuse needs /dev/fuse, and says so when it is out of reach", async () => {
      const tmp = nobodyTmp();
      const usable = (lstatSync("/dev/fuse").mode & 0o006) === 0o006; // nobody is in no group that owns it
      const r = await run(["--lower", rootfs, "--", "sh", "-c", "id -u"], { user: nobody, tmp });
      if (usable) {
        expect([r.code, r.stdout]).toEqual([0, "0\n"]);
      } else {
        expect(r.code).toBe(125);
        expect(r.stderrLines[0]).toMatch(
          /--driver fuse as an unprivileged user needs read-write access to \/dev\/fuse/,
        );
      }
      expectNothingLeft(undefined, tmp);
    });
  });
});

/** A digest of a tree: names, types, modes, sizes, contents and link targets. */
function treeDigest(root: string): string {
  const hash = createHash("sha256");
  const walk = (rel: string) => {
    for (const name of readdirSync(join(root, rel)).sort()) {
      const path = join(root, rel, name);
      const st = lstatSync(path);
      hash.update(`${rel}/${name} ${st.mode} ${st.size} ${st.mtimeMs}\n`);
      if (st.isFile()) hash.update(readFileSync(path));
      else if (st.isSymbolicLink()) hash.update(readlinkSync(path));
      else if (st.isDirectory()) walk(join(rel, name));
    }
  };
  walk("");
  return hash.digest("hex");
}

/**
 * Resolves once the run has printed a line equal to `line` on stdout. A run that exits first,
 * or prints nothing in time, fails the test at once with its status and stderr: a run that
 * failed to start shows why instead of a bare timeout.
 */
/**
 * Waits until `unionfs run` passes signals on. With --driver overlay and no limits Node hands
 * the run over: it execs native/unionfs-wait right after starting the helper, so the command
 * can print before the exec, while a signal would still find Node (whose default for SIGTERM
 * or SIGALRM ends it). With --driver fuse, Node passes them on from before the command starts.
 */
async function signalsPassedOn(run: Running, driver: "overlay" | "fuse"): Promise<void> {
  if (driver === "fuse") return;
  const exe = () => {
    try {
      return basename(readlinkSync(`/proc/${run.child.pid}/exe`));
    } catch {
      return "gone";
    }
  };
  expect(await waitUntil(() => exe() !== basename(process.execPath), RUN_TIMEOUT_MS)).toBe(true);
  expect(exe()).toBe("unionfs-wait");
}

async function waitForLine(run: Running, line: string): Promise<void> {
  const stream = run.child.stdout;
  if (stream === null) throw new Error("no stdout");
  let seen = "";
  const listener = (chunk: Buffer) => {
    seen += chunk.toString("utf8");
  };
  stream.on("data", listener);
  let exited = false;
  run.result.then(
    () => (exited = true),
    () => (exited = true),
  );
  const saw = () => seen.split("\n").includes(line);
  await waitUntil(() => saw() || exited, RUN_TIMEOUT_MS);
  stream.off("data", listener);
  if (saw()) return;
  // SIGTERM: the runner passes it on and still cleans up after itself
  run.child.kill("SIGTERM");
  const r = await run.result;
  throw new Error(
    `no line '${line}' in ${JSON.stringify(seen)}; the run ended with ${r.code ?? r.signal}, stderr ${JSON.stringify(r.stderr)}`,
  );
}

/** Waits for the run's "ready" line; then the pid of its command (PID 1 inside) on the host. */
async function readyPayload(run: Running): Promise<number> {
  await waitForLine(run, "ready");
  const pid = runProcess(run.child.pid as number, 1);
  if (pid === null) throw new Error("the run printed 'ready', but its command is not among its processes");
  return pid;
}

/** Every run a test started, for the afterEach to stop what a failed test left going. */
const started: Running[] = [];

/** Starts `unionfs ARGS...` as installed: the launcher, which runs `run` from its bundle. */
function startRun(args: string[], opts: Parameters<typeof startCommand>[2] = {}) {
  const run = startCommand(process.execPath, [CLI_BIN, ...args], opts);
  started.push(run);
  return run;
}

/** Runs the CLI with `input` on its stdin. */
function runWithInput(
  args: string[],
  input: string,
  env: Record<string, string>,
): Promise<{ code: number | null; stdout: string }> {
  return new Promise((resolve, reject) => {
    const child = spawn(process.execPath, [CLI_BIN, ...args], {
      env: { ...process.env, ...env },
      stdio: ["pipe", "pipe", "inherit"],
    });
    let stdout = "";
    child.stdout.on("data", (c: Buffer) => {
      stdout += c.toString("utf8");
    });
    child.on("error", reject);
    child.on("close", (code) => resolve({ code, stdout }));
    child.stdin.end(input);
  });
}
