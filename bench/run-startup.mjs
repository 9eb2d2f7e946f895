#!/usr/bin/env node
// @ts-check
// Start-up cost of `unionfs run`: how long `unionfs run --driver overlay -- /bin/true` takes from
// exec to exit, next to Node's own start-up (`node -e 0`), `unshare -fmpiu chroot ROOT /bin/true`,
// and bwrap / crun / runc when installed, all on the same busybox rootfs, in one run.
// Commands are measured round-robin (one of each, then again), so a load spike on the machine
// hits every command alike; the report gives medians, p10/p90 and ratios to `node -e 0`.
//
// With --instructions (and valgrind installed) it also counts the user-space instructions the
// Node process executes (callgrind, median of INSTRUCTION_RUNS; the helper and the kernel are not
// counted): a measure a busy machine does not disturb, for what the JS side costs.
//
// With --compare DIR it also runs `unionfs run --driver overlay` from another checkout (built), in
// the same rounds: a before/after that the machine's drift between two runs does not blur.
//
// On a VM with free page reporting, it is held off for the run (bench/driver/page-reporting.mjs):
// otherwise every start-up, `node -e 0` included, sometimes pays host faults for its memory.
//
// usage: node bench/run-startup.mjs [--runs N] [--instructions] [--compare DIR] [--write bench/RUN-STARTUP.md]   (as root)
import { execFileSync, spawnSync } from "node:child_process";
import { mkdirSync, mkdtempSync, readdirSync, readFileSync, rmSync, writeFileSync } from "node:fs";
import { cpus, loadavg, tmpdir } from "node:os";
import { dirname, join } from "node:path";
import { fileURLToPath } from "node:url";
import { buildRootfs, busyboxMissing } from "../tools/build-rootfs.mjs";
import { holdPageReporting } from "./driver/page-reporting.mjs";

const REPO = join(dirname(fileURLToPath(import.meta.url)), "..");
/** the installed command (package.json "bin"), which starts `run` from its bundle and code cache */
const CLI = join(REPO, "dist/cli/unionfs.cjs");
/** the ES module CLI, which runs the same code without the bundle */
const CLI_ESM = join(REPO, "dist/cli/main.js");
const HELPER = join(REPO, "native/build/unionfs-run");

const args = process.argv.slice(2);
const flag = (name, fallback) => {
  const i = args.indexOf(name);
  return i >= 0 && args[i + 1] !== undefined ? args[i + 1] : fallback;
};
const RUNS = Number(flag("--runs", "40"));
const WRITE = flag("--write", undefined);
const COMPARE = flag("--compare", undefined);
const WARMUP = 3;
/** also count the Node process's user-space instructions under callgrind (slow, load-independent) */
const INSTRUCTIONS = args.includes("--instructions");
/** callgrind runs per command: a run varies by a few M instructions (seeds, thread timing) */
const INSTRUCTION_RUNS = 5;

if (process.getuid?.() !== 0) {
  console.error("run-startup: run as root (the peers need it, and so does a fair comparison)");
  process.exit(1);
}
const missing = busyboxMissing();
if (missing !== null) {
  console.error(`run-startup: ${missing}`);
  process.exit(1);
}

// crun refuses hybrid cgroup hosts outright ("cgroups in hybrid mode not supported") even with
// --cgroup-manager=disabled; so the whole benchmark re-runs itself in a private mount namespace
// without the cgroup2 mount, where crun works. Every command then runs in that same namespace.
const cgroup2 = readFileSync("/proc/self/mountinfo", "utf8")
  .split("\n")
  .find((l) => / - cgroup2 /.test(l))
  ?.split(" ")[4];
if (
  which("crun") !== null &&
  hybridCgroups() &&
  cgroup2 !== undefined &&
  process.env.RUN_STARTUP_PRIVATE === undefined
) {
  const script = `umount ${cgroup2} && exec "$@"`;
  const r = spawnSync(
    "unshare",
    [
      "-m",
      "--propagation",
      "private",
      "sh",
      "-c",
      script,
      "sh",
      process.execPath,
      fileURLToPath(import.meta.url),
      ...args,
    ],
    { stdio: "inherit", env: { ...process.env, RUN_STARTUP_PRIVATE: cgroup2 } },
  );
  process.exit(r.status ?? 1);
}

function which(program) {
  try {
    return execFileSync("sh", ["-c", `command -v ${program}`], { encoding: "utf8" }).trim() || null;
  } catch {
    return null;
  }
}

const work = mkdtempSync(join(tmpdir(), "unionfs-run-startup-"));
const reporting = holdPageReporting();
try {
  const rootfs = buildRootfs(join(work, "rootfs"));
  const candidates = [
    { name: "node -e 0", argv: [process.execPath, "-e", "0"] },
    {
      name: "unionfs run --driver overlay -- /bin/true",
      argv: [process.execPath, CLI, "run", "--driver", "overlay", "--lower", rootfs, "--", "/bin/true"],
    },
    {
      name: "unionfs run --driver overlay --net host -- /bin/true",
      argv: [
        process.execPath,
        CLI,
        "run",
        "--driver",
        "overlay",
        "--net",
        "host",
        "--lower",
        rootfs,
        "--",
        "/bin/true",
      ],
    },
    { name: "unionfs run --help (node + CLI load only)", argv: [process.execPath, CLI, "run", "--help"] },
    ...(COMPARE === undefined
      ? []
      : [
          {
            name: `the same from ${COMPARE} (--compare)`,
            argv: [process.execPath, join(COMPARE, "dist/cli/unionfs.cjs"), "run", "--driver", "overlay"].concat([
              "--lower",
              rootfs,
              "--",
              "/bin/true",
            ]),
          },
        ]),
    await helperOnly(rootfs),
    { name: "unshare -fmpiu chroot ROOT /bin/true", argv: ["unshare", "-fmpiu", "chroot", rootfs, "/bin/true"] },
  ];
  const bwrap = which("bwrap");
  if (bwrap !== null) {
    candidates.push({
      name: "bwrap (mount,pid,ipc,uts,net; /proc, /dev) /bin/true",
      argv: [
        bwrap,
        ...["--unshare-pid", "--unshare-ipc", "--unshare-uts", "--unshare-net"],
        ...["--bind", rootfs, "/", "--proc", "/proc", "--dev", "/dev", "/bin/true"],
      ],
    });
  }
  for (const runtime of ["crun", "runc"]) {
    const path = which(runtime);
    if (path === null) continue;
    const bundle = ociBundle(path, join(work, `${runtime}-bundle`), rootfs);
    // Like unionfs without limits, create no cgroup.
    const global = runtime === "crun" ? ["--cgroup-manager=disabled"] : [];
    let n = 0;
    candidates.push({
      name: `${runtime} ${global.join(" ")} run (OCI default spec, rootfs dir) /bin/true`.replace(/ {2}/g, " "),
      argv: () => [path, ...global, "run", "--bundle", bundle, `bench-${process.pid}-${n++}`],
    });
  }

  const usable = [];
  for (const c of candidates) {
    const r = spawnSync(...split(argvOf(c)), { stdio: ["ignore", "ignore", "pipe"], encoding: "utf8" });
    if (r.status === 0) usable.push(c);
    else console.error(`run-startup: skipping ${c.name}: exit ${r.status} ${r.stderr.trim().split("\n")[0] ?? ""}`);
  }
  const loadBefore = loadavg();
  const times = new Map(usable.map((c) => [c, /** @type {number[]} */ ([])]));
  const cpu = new Map(usable.map((c) => [c, 0]));
  for (let round = 0; round < WARMUP + RUNS; round++) {
    for (const c of usable) {
      const cpu0 = childrenCpuMs();
      const t0 = process.hrtime.bigint();
      const r = spawnSync(...split(argvOf(c)), { stdio: "ignore" });
      const ms = Number(process.hrtime.bigint() - t0) / 1e6;
      if (r.status !== 0) throw new Error(`${c.name} failed with ${r.status}`);
      if (round < WARMUP) continue;
      times.get(c)?.push(ms);
      cpu.set(c, (cpu.get(c) ?? 0) + childrenCpuMs() - cpu0);
    }
  }
  const loadAfter = loadavg();
  const baseTimes = times.get(usable[0]) ?? [];
  const base = median(baseTimes);
  const baseCpu = (cpu.get(usable[0]) ?? 0) / RUNS;
  const rows = usable.map((c) => {
    const t = times.get(c) ?? [];
    const m = median(t);
    // each round's difference to the round's `node -e 0`: a slow spell hits both
    const paired = median(t.map((ms, i) => ms - (baseTimes[i] ?? Number.NaN)));
    const c1 = (cpu.get(c) ?? 0) / RUNS;
    return (
      `| ${c.name} | ${m.toFixed(1)} | ${pct(t, 0.1).toFixed(1)} / ${pct(t, 0.9).toFixed(1)} | ${(m / base).toFixed(2)} | ` +
      `${(m - base).toFixed(1)} | ${paired.toFixed(1)} | ${c1.toFixed(1)} | ${(c1 - baseCpu).toFixed(1)} |`
    );
  });
  const report = [
    "# `unionfs run` start-up",
    "",
    `Measured ${new Date().toISOString().slice(0, 10)} with \`node bench/run-startup.mjs ${args.join(" ")}\`: wall time from`,
    "exec to exit of each command, run round-robin, after a warm-up; medians in ms. CPU ms is the mean",
    "user + system time of the command and everything it waited for (from this process's cutime/cstime).",
    "",
    `Machine: ${machine()}; load average ${loadBefore.map((l) => l.toFixed(1)).join(" ")} before,`,
    `${loadAfter.map((l) => l.toFixed(1)).join(" ")} after.${process.env.RUN_STARTUP_PRIVATE !== undefined ? ` All commands ran in a private mount namespace without the hybrid host's ${process.env.RUN_STARTUP_PRIVATE} mount, which crun refuses.` : ""}`,
    ...(reporting === null ? [] : ["", `Note: ${reporting.note}.`]),
    "",
    "Paired: the median over rounds of each round's difference to that round's `node -e 0`.",
    "",
    "| command | median ms | p10 / p90 ms | × node -e 0 | ms over node -e 0 | paired ms over | CPU ms | CPU ms over node -e 0 |",
    "| --- | ---: | ---: | ---: | ---: | ---: | ---: | ---: |",
    ...rows,
    "",
    ...(INSTRUCTIONS ? instructionTable(rootfs) : []),
  ].join("\n");
  process.stdout.write(report);
  if (WRITE !== undefined) writeFileSync(WRITE, report);
} finally {
  reporting?.restore();
  rmSync(work, { recursive: true, force: true });
}

/** Millions of user-space instructions of the Node process (children not traced). */
function instructionTable(rootfs) {
  if (which("valgrind") === null) return ["(valgrind is not installed: no instruction counts)", ""];
  const empty = join(work, "empty.mjs");
  writeFileSync(empty, "");
  const run = ["run", "--driver", "overlay", "--lower", rootfs, "--", "/bin/true"];
  const rows = [
    ["node -e 0", [process.execPath, "-e", "0"]],
    ["node empty.mjs (the ES module loader)", [process.execPath, empty]],
    ["unionfs run --help (start-up: modules only)", [process.execPath, CLI, "run", "--help"]],
    ["unionfs run --driver overlay -- /bin/true", [process.execPath, CLI, ...run]],
    ["the same through dist/cli/main.js (ES modules, no bundle)", [process.execPath, CLI_ESM, ...run]],
  ].map(([name, argv]) => {
    const counts = [];
    for (let i = 0; i < INSTRUCTION_RUNS; i++) {
      // A run execs its waiter, and valgrind reports nothing for a process that execs: so a
      // profile dump just before execve, added to the one at exit for processes that don't.
      // Only this process's dumps: a child's (the helper, before its own exec) starts from a
      // copy of the parent's counts.
      const out = join(work, `callgrind-${i}`);
      rmSync(out, { recursive: true, force: true });
      mkdirSync(out);
      const cg = ["--tool=callgrind", "--dump-before=execve", `--callgrind-out-file=${join(out, "cg.%p")}`];
      const r = spawnSync("valgrind", [...cg, ...argv], { stdio: "ignore" });
      let total = 0;
      for (const name of readdirSync(out)) {
        if (name !== `cg.${r.pid}` && !name.startsWith(`cg.${r.pid}.`)) continue;
        const m = /^totals: (\d+)$/m.exec(readFileSync(join(out, name), "utf8"));
        if (m !== null) total += Number(m[1]);
      }
      counts.push(total > 0 ? total / 1e6 : Number.NaN);
    }
    return { name, mi: median(counts), min: Math.min(...counts), max: Math.max(...counts) };
  });
  const base = rows[0]?.mi ?? Number.NaN;
  return [
    `User-space instructions of the Node process up to its exit or its exec (callgrind, median of`,
    `${INSTRUCTION_RUNS} runs each; the helper and the kernel are not in these). The run`,
    `bundle's code cache under valgrind: ${codeCacheState()}.`,
    "",
    "| command | M instructions | min / max | over node -e 0 |",
    "| --- | ---: | ---: | ---: |",
    ...rows.map(
      (r) =>
        `| ${r.name} | ${r.mi.toFixed(1)} | ${r.min.toFixed(1)} / ${r.max.toFixed(1)} | ${(r.mi - base).toFixed(1)} |`,
    ),
    "",
  ];
}

/** Whether V8 takes the bundle's code cache under valgrind (else the counts above include its compile). */
function codeCacheState() {
  const script =
    `const { loadBundle } = require(${JSON.stringify(join(REPO, "dist/cli/bundle-loader.cjs"))});` +
    `require("node:fs").writeSync(2, "cache=" + loadBundle(${JSON.stringify(join(REPO, "dist/cli/run.cjs"))}).cache);`;
  const r = spawnSync("valgrind", ["--tool=none", process.execPath, "-e", script], { encoding: "utf8" });
  return /cache=(\w+)/.exec(r.stderr)?.[1] ?? "unknown";
}

/**
 * The native helper alone, with the plan `unionfs run --driver overlay` gives it as root (the
 * upper in memory), but as a child and without cleanup: the empty run dir serves every round.
 */
async function helperOnly(rootfs) {
  const { planRun, helperArgs, buildEnv } = await import(join(REPO, "dist/runner/plan.js"));
  const dir = join(work, "helper-run");
  mkdirSync(dir, { recursive: true });
  const plan = planRun({
    rootDir: dir,
    rootfs: { kind: "tmpfs-overlay", lowers: [rootfs] },
    rootless: false,
    net: "none",
    hostname: "bench",
    env: buildEnv("bench", [], [], {}),
    init: false,
    cgroupProcs: [],
    command: ["/bin/true"],
    // as a child reporting nowhere: the run dir stays for the next round
    role: { kind: "child", statusFile: "/dev/null" },
  });
  return { name: "native helper alone (same plan, no Node)", argv: [HELPER, ...helperArgs(plan)] };
}

/** An OCI bundle for `runtime` on `rootfs`: its default spec, no terminal, /bin/true. */
function ociBundle(runtime, bundle, rootfs) {
  mkdirSync(bundle, { recursive: true });
  execFileSync(runtime, ["spec"], { cwd: bundle });
  const config = JSON.parse(readFileSync(join(bundle, "config.json"), "utf8"));
  config.process.terminal = false;
  config.process.args = ["/bin/true"];
  config.root = { path: rootfs, readonly: true };
  writeFileSync(join(bundle, "config.json"), JSON.stringify(config));
  return bundle;
}

/** user + system CPU of this process's waited-for children so far, in ms (clock ticks of 10 ms). */
function childrenCpuMs() {
  const stat = readFileSync("/proc/self/stat", "utf8");
  const fields = stat.slice(stat.lastIndexOf(")") + 2).split(" ");
  return (Number(fields[13]) + Number(fields[14])) * 10;
}

/** v1 controllers in use next to a cgroup2 mount. */
function hybridCgroups() {
  const mounts = readFileSync("/proc/self/mountinfo", "utf8");
  return / - cgroup2 /.test(mounts) && / - cgroup /.test(mounts);
}

function argvOf(c) {
  return typeof c.argv === "function" ? c.argv() : c.argv;
}

/** [file, args] for spawnSync. */
function split(argv) {
  return [argv[0], argv.slice(1)];
}

function median(xs) {
  return pct(xs, 0.5);
}

function pct(xs, p) {
  const s = [...xs].sort((a, b) => a - b);
  return s.length === 0 ? Number.NaN : (s[Math.min(s.length - 1, Math.floor(p * s.length))] ?? Number.NaN);
}

function machine() {
  const kernel = execFileSync("uname", ["-r"], { encoding: "utf8" }).trim();
  const model = cpus()[0]?.model ?? "unknown CPU";
  return `${cpus().length} × ${model}, Linux ${kernel}, Node ${process.version}`;
}
