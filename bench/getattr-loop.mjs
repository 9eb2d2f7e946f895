#!/usr/bin/env node
// @ts-check
/**
 * The daemon's cost of one FUSE request, as near to the loop alone as a request gets: a client
 * calls statx(AT_STATX_FORCE_SYNC) on one file over and over, and each call is exactly one
 * GETATTR the daemon must answer (with long attribute timeouts, nothing else makes the kernel
 * ask again). The same loop runs on unionfs over /dev/fuse (devfuse), unionfs on fuse-native,
 * fuse-overlayfs and kernel overlayfs (no daemon: the floor of the wall time), all mounted over
 * the same small lower, each mounted once for the whole run and measured in rounds whose order
 * rotates. Daemon CPU comes from /proc and requests from the kernel's tracepoint, as
 * bench/driver measures them (proc.mjs, fuse-requests.mjs).
 *
 *   node bench/getattr-loop.mjs [--requests N] [--runs R] [--clients K] [--workers W]
 *                                                            (root; prints a markdown table)
 *
 *   --requests  statx calls per mount per round, split over the clients (default 100000)
 *   --runs      rounds (default 5); medians and ranges are over them
 *   --clients   loop processes running at once (default 1: one request in flight)
 *   --workers   passed to the devfuse mount as `--workers W`; refused while the CLI has no
 *               such option (devfuse serves with one worker thread until it does)
 *
 * The client is a C loop compiled here with cc; where there is no cc, the loop runs in Node
 * through koffi (libc's statx), which adds to the wall time only. The client holds the file
 * by an O_PATH descriptor and asks with AT_EMPTY_PATH, so no path walk and no LOOKUP is in the
 * loop: one statx, one GETATTR. The script checks that: a mount whose GETATTR count falls
 * short of the calls made is marked in the table.
 */
import { existsSync, mkdirSync, mkdtempSync, readFileSync, writeFileSync } from "node:fs";
import { join } from "node:path";
import { fileURLToPath } from "node:url";
import { DRIVERS, UNIONFS_CLI, unionfsDriver } from "./driver/drivers.mjs";
import { counterUnavailable, startRequestCounter } from "./driver/fuse-requests.mjs";
import { describeMachine, machineLine } from "./driver/machine.mjs";
import {
  catchInterrupts,
  firstLine,
  mountPoints,
  mustRun,
  processCpuSeconds,
  runCommand,
  which,
} from "./driver/proc.mjs";

const SELF = fileURLToPath(import.meta.url);
/** the mounts in the order of the table; kernel overlayfs has no daemon and no requests */
const MOUNTS = ["unionfs-devfuse", "unionfs", "fuse-overlayfs", "overlay"];
/** the reference the CPU ratios are taken against */
const REFERENCE = "fuse-overlayfs";
/** calls per mount before the first round: the daemons' JIT and caches are warm when measured */
const WARM_UP = 2000;

const LOOP_C = `
#define _GNU_SOURCE
#include <errno.h>
#include <fcntl.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <time.h>
int main(int argc, char **argv) {
  if (argc != 3) return 2;
  long n = atol(argv[2]);
  int fd = open(argv[1], O_PATH);
  if (fd < 0) { fprintf(stderr, "open: %s\\n", strerror(errno)); return 1; }
  struct statx stx;
  struct timespec a, b;
  clock_gettime(CLOCK_MONOTONIC, &a);
  for (long i = 0; i < n; i++) {
    if (statx(fd, "", AT_EMPTY_PATH | AT_STATX_FORCE_SYNC, STATX_BASIC_STATS, &stx) != 0) {
      fprintf(stderr, "statx: %s\\n", strerror(errno));
      return 1;
    }
  }
  clock_gettime(CLOCK_MONOTONIC, &b);
  printf("%lld\\n", (long long)(b.tv_sec - a.tv_sec) * 1000000000LL + (b.tv_nsec - a.tv_nsec));
  return 0;
}
`;

/** The same loop through koffi, for machines without a C compiler; prints the loop's ns. */
async function koffiLoop(/** @type {string} */ path, /** @type {number} */ n) {
  const koffi = (await import("koffi")).default;
  const libc = koffi.load("libc.so.6");
  const open = libc.func("int open(const char *path, int flags)");
  const statx = libc.func("int statx(int dirfd, const char *path, int flags, unsigned int mask, _Out_ uint8_t *buf)");
  const [O_PATH, AT_EMPTY_PATH, AT_STATX_FORCE_SYNC, STATX_BASIC_STATS] = [0o10000000, 0x1000, 0x2000, 0x7ff];
  const fd = open(path, O_PATH);
  if (fd < 0) throw new Error(`open ${path}: errno ${koffi.errno()}`);
  const buf = Buffer.alloc(256);
  const t0 = process.hrtime.bigint();
  for (let i = 0; i < n; i++) {
    if (statx(fd, "", AT_EMPTY_PATH | AT_STATX_FORCE_SYNC, STATX_BASIC_STATS, buf) !== 0) {
      throw new Error(`statx: errno ${koffi.errno()}`);
    }
  }
  process.stdout.write(`${process.hrtime.bigint() - t0}\n`);
}

/** The argv that runs `n` forced statx calls on `path`: the C loop, or the koffi one. */
async function loopCommand(/** @type {string} */ dir) {
  if (which("cc") !== null) {
    const src = join(dir, "statx-loop.c");
    writeFileSync(src, LOOP_C);
    await mustRun(["cc", "-O2", "-o", join(dir, "statx-loop"), src]);
    return {
      client: "C (cc -O2)",
      argv: (/** @type {string} */ p, /** @type {number} */ n) => [join(dir, "statx-loop"), p, String(n)],
    };
  }
  return {
    client: "Node + koffi (no cc here)",
    argv: (/** @type {string} */ p, /** @type {number} */ n) => [process.execPath, SELF, "loop", p, String(n)],
  };
}

/** Runs the loops of one sample (`clients` at once); resolves with the slowest loop's ns. */
async function runLoops(/** @type {string[][]} */ argvs) {
  const results = await Promise.all(argvs.map((argv) => runCommand({ argv, captureStdout: true })));
  for (const r of results) {
    if (r.code !== 0) throw new Error(`the statx loop failed (${r.code ?? r.signal}): ${firstLine(r.stderr)}`);
  }
  return Math.max(...results.map((r) => Number(r.stdout.trim())));
}

/** Parses --name value flags; unknown ones are an error. */
function options(/** @type {string[]} */ argv) {
  const opts = { requests: 100_000, runs: 5, clients: 1, workers: /** @type {number | null} */ (null) };
  for (let i = 0; i < argv.length; i += 2) {
    const name = argv[i]?.replace(/^--/, "");
    const value = Number(argv[i + 1]);
    if (name === undefined || !(name in opts) || !Number.isInteger(value) || value < 1) {
      throw new Error(`usage: getattr-loop.mjs [--requests N] [--runs R] [--clients K] [--workers W] (at ${argv[i]})`);
    }
    /** @type {Record<string, number | null>} */ (opts)[name] = value;
  }
  return opts;
}

/** The mounts to measure: the drivers of bench/driver, devfuse with `--workers` when asked. */
async function chooseMounts(/** @type {number | null} */ workers) {
  if (workers !== null) {
    const help = await runCommand({ argv: [process.execPath, UNIONFS_CLI, "mount", "--help"], captureStdout: true });
    if (!help.stdout.includes("--workers")) {
      throw new Error("this build's `unionfs mount` has no --workers option: devfuse serves with one worker thread");
    }
  }
  const mounts = [];
  const notes = [];
  for (const name of MOUNTS) {
    const d =
      name === "unionfs-devfuse" && workers !== null
        ? unionfsDriver(false, null, "devfuse", ["--workers", String(workers)])
        : DRIVERS.find((x) => x.name === name);
    if (d === undefined) throw new Error(`no driver ${name} in bench/driver/drivers.mjs`);
    const why = await d.unavailable();
    if (why === null) mounts.push(d);
    else notes.push(`${name} skipped: ${why}`);
  }
  return { mounts, notes };
}

/**
 * @typedef {object} Sample
 * @property {number} round
 * @property {number} wallUs   the loop's time (the slowest client's) over all its statx calls
 * @property {number | null} cpuUs  daemon CPU per GETATTR (null: no daemon)
 * @property {number} getattrPerCall
 * @property {number} others   requests other than GETATTR during the loop
 */

/** One round on one mount. */
async function measure(
  /** @type {import("./driver/drivers.mjs").Instance} */ inst,
  /** @type {string[][]} */ argvs,
  /** @type {number} */ calls,
  /** @type {number} */ round,
) {
  const pid = inst.daemonPid;
  const counter = inst.connection === null ? null : await startRequestCounter(inst.connection);
  try {
    const cpu0 = pid === null ? 0 : (processCpuSeconds(pid) ?? Number.NaN);
    const ns = await runLoops(argvs);
    const cpu = pid === null ? 0 : (processCpuSeconds(pid) ?? Number.NaN) - cpu0;
    const counts = counter === null ? { total: 0, byOp: {} } : await counter.stop();
    const getattr = counts.byOp.GETATTR ?? 0;
    /** @type {Sample} */
    const sample = {
      round,
      wallUs: ns / 1000 / calls,
      cpuUs: pid === null ? null : (cpu * 1e6) / Math.max(getattr, 1),
      getattrPerCall: getattr / calls,
      others: counts.total - getattr,
    };
    return sample;
  } catch (e) {
    counter?.abort();
    throw e;
  }
}

function median(/** @type {number[]} */ xs) {
  const s = [...xs].sort((a, b) => a - b);
  const mid = Math.floor(s.length / 2);
  return s.length % 2 === 1 ? (s[mid] ?? Number.NaN) : ((s[mid - 1] ?? 0) + (s[mid] ?? 0)) / 2;
}

function spread(/** @type {number[]} */ xs, digits = 1) {
  if (xs.length === 0) return "–";
  const f = (/** @type {number} */ x) => x.toFixed(digits);
  return `${f(median(xs))} [${f(Math.min(...xs))}–${f(Math.max(...xs))}]`;
}

/** The markdown table: one row per mount. */
function table(/** @type {Map<string, Sample[]>} */ results) {
  const ref = results.get(REFERENCE) ?? [];
  const lines = [
    `| mount | daemon CPU µs / GETATTR | CPU vs ${REFERENCE}, same round | wall µs / statx | GETATTR per statx | other requests |`,
    "|---|---:|---:|---:|---:|---:|",
  ];
  for (const [name, samples] of results) {
    const cpu = samples.flatMap((s) => (s.cpuUs === null ? [] : [s.cpuUs]));
    const ratios = samples.flatMap((s) => {
      const r = ref.find((x) => x.round === s.round)?.cpuUs;
      return s.cpuUs === null || r === undefined || r === null ? [] : [s.cpuUs / r];
    });
    const perCall = samples.map((s) => s.getattrPerCall);
    const fuse = cpu.length > 0;
    const short = fuse && Math.min(...perCall) < 0.999 ? " (short!)" : "";
    lines.push(
      `| ${name} | ${fuse ? spread(cpu) : "–"} | ${fuse ? spread(ratios, 2) : "–"} | ${spread(samples.map((s) => s.wallUs))} | ` +
        `${fuse ? `${Math.min(...perCall).toFixed(3)}–${Math.max(...perCall).toFixed(3)}${short}` : "–"} | ` +
        `${fuse ? Math.max(...samples.map((s) => s.others)) : "–"} |`,
    );
  }
  return lines.join("\n");
}

async function main(/** @type {ReturnType<typeof options>} */ opts) {
  if (process.getuid?.() !== 0) throw new Error("the benchmark needs root (it mounts)");
  const why = await counterUnavailable();
  if (why !== null) throw new Error(`cannot count FUSE requests: ${why}`);
  const { mounts, notes } = await chooseMounts(opts.workers);
  const log = (/** @type {string} */ line) => process.stderr.write(`getattr-loop: ${line}\n`);
  for (const n of notes) log(n);

  const root = mkdtempSync("/var/tmp/unionfs-getattr-");
  /** @type {import("./driver/drivers.mjs").Instance[]} */
  const instances = [];
  const signals = catchInterrupts(() => log("interrupted: cleaning up"));
  /** @type {Map<string, Sample[]>} */
  const results = new Map();
  const load = [readFileSync("/proc/loadavg", "utf8").trim()];
  try {
    const lower = join(root, "lower");
    mkdirSync(join(lower, "d"), { recursive: true });
    writeFileSync(join(lower, "f"), "a lower file\n");
    writeFileSync(join(lower, "d", "g"), "another\n");
    const loop = await loopCommand(root);
    const dataset = /** @type {any} */ ({ layers: [lower] });
    const live = [];
    for (const d of mounts) {
      const dir = join(root, d.name);
      mkdirSync(dir);
      const inst = await d.start({ dataset, dir, upperDir: dir, mutates: [], writes: false });
      instances.push(inst);
      const file = join(inst.root, "f");
      const per = Math.floor(opts.requests / opts.clients);
      const argvs = Array.from({ length: opts.clients }, () => loop.argv(file, per));
      await runLoops([loop.argv(file, WARM_UP)]);
      live.push({ name: d.name, inst, argvs, calls: per * opts.clients });
      results.set(d.name, []);
    }
    for (let round = 1; round <= opts.runs && !signals.interrupted(); round++) {
      for (let i = 0; i < live.length && !signals.interrupted(); i++) {
        const m = live[(i + round - 1) % live.length];
        if (m === undefined) continue;
        const s = await measure(m.inst, m.argvs, m.calls, round);
        results.get(m.name)?.push(s);
        log(`round ${round} ${m.name}: ${s.wallUs.toFixed(1)} µs/statx, cpu ${s.cpuUs?.toFixed(1) ?? "–"} µs/GETATTR`);
      }
    }
    load.push(readFileSync("/proc/loadavg", "utf8").trim());
    const machine = machineLine(await describeMachine(root));
    return { table: table(results), client: loop.client, machine, load, notes, interrupted: signals.interrupted() };
  } catch (e) {
    // a Ctrl-C reaches the loop too: its failure is the interruption, not news
    throw signals.interrupted() ? new Error("interrupted") : e;
  } finally {
    signals.release();
    for (const inst of instances.reverse()) {
      try {
        await inst.teardown();
      } catch (e) {
        log(`teardown: ${e instanceof Error ? e.message : String(e)}`);
      }
    }
    for (const m of mountPoints()
      .filter((p) => p.startsWith(`${root}/`))
      .reverse()) {
      await runCommand({ argv: ["umount", "-l", m] });
    }
    if (mountPoints().some((p) => p.startsWith(`${root}/`))) log(`not removing ${root}: still mounted`);
    else if (existsSync(root)) await mustRun(["rm", "-rf", "--one-file-system", "--", root]);
  }
}

/** @returns {never} */
function fail(/** @type {unknown} */ e) {
  process.stderr.write(`getattr-loop: ${e instanceof Error ? e.message : String(e)}\n`);
  process.exit(1);
}

if (process.argv[2] === "loop") {
  await koffiLoop(/** @type {string} */ (process.argv[3]), Number(process.argv[4]));
} else {
  /** @type {ReturnType<typeof options>} */
  let opts;
  try {
    opts = options(process.argv.slice(2));
  } catch (e) {
    fail(e);
  }
  const r = await main(opts).catch(fail);
  const out = [
    `${opts.requests} forced statx per mount per round, ${opts.runs} rounds, ${opts.clients} client(s), client loop in ${r.client}; ` +
      "median [min–max] over rounds",
    "",
    r.table,
    "",
    `machine: ${r.machine}`,
    `load average before / after: ${r.load.join(" / ")}`,
    ...r.notes.map((n) => `note: ${n}`),
    ...(r.interrupted ? ["note: interrupted: rounds are missing"] : []),
  ];
  process.stdout.write(`${out.join("\n")}\n`);
}
