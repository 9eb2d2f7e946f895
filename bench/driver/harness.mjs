// @ts-check
/**
 * The driver comparison: the same workloads on each storage driver, round-robin.
 *
 * For every round, workload and mode, each driver runs once, in an order rotated by the round
 * (no driver always goes first). Every measurement is on a fresh instance (new mount, empty
 * upper). Cold: caches dropped just before the timed run. Warm: an identical untimed run first,
 * on the same instance, or for workloads that change the lower data (rm -rf, copy-up) on a
 * throwaway instance. The ratio to kernel overlayfs is taken per round, so the machine's drift
 * between rounds cancels out.
 *
 * For FUSE drivers the daemon's CPU time is read from /proc before and after the timed run, and
 * the requests it served are counted by the kernel (fuse-requests.mjs).
 *
 * Uppers and work dirs go on the data set's filesystem, or with `upperFs: "tmpfs"` on a tmpfs
 * mounted for the run (upper-fs.mjs); each sample records the filesystem its upper was on, as
 * statfs reports it.
 *
 * Everything is built under `scratchDir` and removed at the end, interrupted or not (the tmpfs
 * unmounted); the data set too unless `keepData`.
 */
import { mkdir, writeFile } from "node:fs/promises";
import { join } from "node:path";
import { ensureDataset, removeDataset, removeTree } from "../../tools/make-dataset.mjs";
import { BASE_SUFFIX, BASELINE, baseDrivers, DRIVERS } from "./drivers.mjs";
import { counterUnavailable, startRequestCounter } from "./fuse-requests.mjs";
import { describeMachine } from "./machine.mjs";
import { holdPageReporting } from "./page-reporting.mjs";
import {
  catchInterrupts,
  dropCaches,
  firstLine,
  mountPoints,
  processCpuSeconds,
  runCommand,
  syncAll,
} from "./proc.mjs";
import { renderMarkdown, summarize } from "./report.mjs";
import { renderChart } from "./svg-chart.mjs";
import { describeUpperPlace, filesystemType, prepareUpperPlace, sameFilesystem } from "./upper-fs.mjs";
import { WORKLOADS, workloadUnavailable } from "./workloads.mjs";

/** A problem with the request (unknown driver, not root, ...): one line for the user. */
export class BenchSetupError extends Error {
  constructor(/** @type {string} */ message) {
    super(message);
    this.name = "BenchSetupError";
  }
}

export const MODES = /** @type {const} */ (["cold", "warm"]);
/** @typedef {(typeof MODES)[number]} Mode */
const WORKLOAD_TIMEOUT_MS = 20 * 60_000;

/**
 * @typedef {object} BenchOptions
 * @property {string[] | null} drivers     null: every driver
 * @property {string[] | null} workloads   null: every workload
 * @property {number} runs
 * @property {Mode[]} modes
 * @property {number} files
 * @property {number} bigMiB
 * @property {string} dataDir
 * @property {string} scratchDir
 * @property {string} outDir
 * @property {boolean} keepData
 * @property {import("./upper-fs.mjs").UpperFs} [upperFs]  where uppers and work dirs go (default "data")
 * @property {string | null} [compare]   another checkout (built) whose unionfs runs too, as `unionfs@base`
 * @property {(line: string) => void} log
 */

/**
 * @typedef {object} Sample
 * @property {number} round
 * @property {string} workload
 * @property {Mode} mode
 * @property {string} driver
 * @property {number | null} seconds
 * @property {string | null} upperFs   the filesystem type of the instance's upper (statfs), null without one
 * @property {number | null} daemonCpuSeconds
 * @property {import("./fuse-requests.mjs").RequestCounts | null} requests
 * @property {string | null} error
 */

export function listDrivers() {
  return DRIVERS.map((d) => ({ name: d.name, title: d.title }));
}

/**
 * The drivers of a run: with `compare`, each unionfs driver has its `@base` twin right after it,
 * and a twin runs whenever its own driver does (or when named itself).
 * @param {string[] | null} asked
 * @param {string | null | undefined} compare
 */
function chooseDrivers(asked, compare) {
  const twins = compare ? baseDrivers(compare) : [];
  const all = DRIVERS.flatMap((d) => [d, ...twins.filter((t) => t.name === d.name + BASE_SUFFIX)]);
  const names = all.map((d) => d.name);
  const withTwins = asked?.flatMap((n) => (names.includes(n + BASE_SUFFIX) ? [n, n + BASE_SUFFIX] : [n])) ?? null;
  const chosen = pick(
    withTwins,
    names,
    "driver",
    all.filter((d) => d.optional !== true).map((d) => d.name),
  );
  return all.filter((d) => chosen.includes(d.name));
}

export function listWorkloads() {
  return WORKLOADS.map((w) => ({ id: w.id, title: w.title }));
}

function pick(
  /** @type {string[] | null} */ names,
  /** @type {string[]} */ known,
  /** @type {string} */ kind,
  /** @type {string[]} */ byDefault = known,
) {
  if (names === null) return byDefault;
  for (const n of names)
    if (!known.includes(n)) throw new BenchSetupError(`unknown ${kind} '${n}' (known: ${known.join(", ")})`);
  return known.filter((k) => names.includes(k));
}

/** Runs the comparison and writes results.json, report.md and chart.svg into `outDir`. */
export async function runBench(/** @type {BenchOptions} */ opts) {
  if (process.getuid?.() !== 0) throw new BenchSetupError("the benchmark needs root (mounts, drop_caches)");
  const t0 = Date.now();
  const log = (/** @type {string} */ line) => opts.log(`${((Date.now() - t0) / 1000).toFixed(1).padStart(6)}s ${line}`);
  const notes = [];
  const drivers = [];
  for (const d of chooseDrivers(opts.drivers, opts.compare)) {
    const why = await d.unavailable();
    if (why === null) drivers.push(d);
    else notes.push(`driver ${d.name} skipped: ${why}`);
  }
  const workloadIds = pick(
    opts.workloads,
    WORKLOADS.map((w) => w.id),
    "workload",
  );
  const workloads = [];
  for (const w of WORKLOADS.filter((x) => workloadIds.includes(x.id))) {
    const why = workloadUnavailable(w);
    if (why === null) workloads.push(w);
    else notes.push(`workload ${w.id} skipped: ${why}`);
  }
  if (drivers.length === 0 || workloads.length === 0) throw new BenchSetupError(`nothing to run: ${notes.join("; ")}`);
  if (!drivers.some((d) => d.name === BASELINE)) notes.push(`no ${BASELINE} driver: no ratios`);
  let countRequests = false;
  if (drivers.some((d) => d.name.startsWith("unionfs") || d.name === "fuse-overlayfs")) {
    const why = await counterUnavailable();
    countRequests = why === null;
    if (why !== null) notes.push(`FUSE requests not counted: ${why}`);
  }
  const reporting = holdPageReporting();
  if (reporting !== null) notes.push(reporting.note);
  for (const n of notes) log(n);

  const signals = catchInterrupts(() => log("interrupted: finishing the current measurement and cleaning up"));
  const scratch = join(opts.scratchDir, `run-${process.pid}-${Date.now()}`);
  /** @type {Sample[]} */
  const samples = [];
  const started = new Date();
  let dataset;
  let machine = null;
  /** @type {import("./upper-fs.mjs").UpperPlace | null} */
  let uppers = null;
  try {
    await mkdir(join(scratch, "home"), { recursive: true });
    const parts = [...new Set(workloads.flatMap((w) => w.uses))];
    dataset = await ensureDataset({ dir: opts.dataDir, files: opts.files, bigMiB: opts.bigMiB, parts, log });
    machine = await describeMachine(opts.dataDir);
    uppers = await prepareUpperPlace(opts.upperFs ?? "data", scratch);
    if (uppers.kind !== "data") log(describeUpperPlace(uppers));
    const env = {
      dataset,
      scratch,
      upperRoot: uppers.root,
      countRequests,
      bigMiB: opts.bigMiB,
      dataDir: opts.dataDir,
      seq: 0,
    };
    for (let round = 1; round <= opts.runs && !signals.interrupted(); round++) {
      for (const w of workloads) {
        for (const mode of opts.modes) {
          const order = drivers.map((_, i) => drivers[(i + round - 1) % drivers.length]);
          for (const d of order) {
            if (signals.interrupted() || d === undefined) break;
            const sample = await measure(env, d, w, mode, round);
            samples.push(sample);
            log(describeSample(sample, opts.runs));
          }
        }
      }
    }
  } finally {
    reporting?.restore();
    signals.release();
    await uppers?.unmount();
    await cleanup(scratch, log);
    if (!opts.keepData) await removeDataset(opts.dataDir);
  }
  const report = {
    version: 1,
    started: started.toISOString(),
    finished: new Date().toISOString(),
    interrupted: signals.interrupted(),
    machine,
    config: {
      drivers: drivers.map((d) => ({ name: d.name, title: d.title })),
      workloads: workloads.map((w) => ({ id: w.id, title: w.title })),
      runs: opts.runs,
      modes: opts.modes,
      baseline: BASELINE,
      compare: opts.compare ?? null,
      uppers: { kind: opts.upperFs ?? "data", mount: uppers?.mount ?? null },
      dataset: {
        files: opts.files,
        bigMiB: opts.bigMiB,
        parts: dataset?.parts ?? {},
        pyModules: dataset?.pyModules.length ?? 0,
      },
    },
    notes,
    samples,
    summary: summarize(samples, {
      drivers: drivers.map((d) => d.name),
      workloads: workloads.map((w) => w.id),
      modes: opts.modes,
    }),
  };
  await mkdir(opts.outDir, { recursive: true });
  const markdown = renderMarkdown(report);
  await writeFile(join(opts.outDir, "results.json"), `${JSON.stringify(report, null, 2)}\n`);
  await writeFile(join(opts.outDir, "report.md"), markdown);
  await writeFile(join(opts.outDir, "chart.svg"), renderChart(report));
  return { report, markdown, outDir: opts.outDir };
}

/**
 * @param {{dataset: import("../../tools/make-dataset.mjs").Manifest, scratch: string, upperRoot: string | null, countRequests: boolean, bigMiB: number, dataDir: string, seq: number}} env
 * @param {import("./drivers.mjs").Driver} driver
 * @param {import("./workloads.mjs").Workload} workload
 * @param {Mode} mode
 * @param {number} round
 * @returns {Promise<Sample>}
 */
async function measure(env, driver, workload, mode, round) {
  /** @type {Sample} */
  const sample = {
    round,
    workload: workload.id,
    mode,
    driver: driver.name,
    seconds: null,
    upperFs: null,
    daemonCpuSeconds: null,
    requests: null,
    error: null,
  };
  const start = async () => {
    const name = `i${++env.seq}-${driver.name}`;
    const dir = join(env.scratch, name);
    const upperDir = env.upperRoot === null ? dir : join(env.upperRoot, name);
    await mkdir(dir);
    if (upperDir !== dir) await mkdir(upperDir);
    const ctx = { dataset: env.dataset, dir, upperDir, mutates: workload.mutates, writes: workload.writes };
    const inst = await driver.start(ctx);
    if (inst.upper !== null && inst.work !== null && !sameFilesystem(inst.upper, inst.work)) {
      await inst.teardown();
      throw new Error(`${inst.work} is not on the filesystem of ${inst.upper}`);
    }
    return inst;
  };
  const exec = async (/** @type {import("./drivers.mjs").Instance} */ inst, /** @type {string} */ tag) => {
    const spec = workload.command({
      root: inst.root,
      dataDir: env.dataDir,
      bigMiB: env.bigMiB,
      tag,
      home: join(env.scratch, "home"),
    });
    const res = await runCommand(spec, WORKLOAD_TIMEOUT_MS);
    if (res.code !== 0) throw new Error(`${tag} run failed (${res.code ?? res.signal}): ${firstLine(res.stderr)}`);
    const bad = workload.check?.(res.stdout) ?? null;
    if (bad !== null) throw new Error(bad);
    return res.seconds;
  };
  /** @type {import("./drivers.mjs").Instance | null} */
  let inst = null;
  try {
    const fresh = workload.mutates.length > 0;
    if (mode === "warm" && fresh) {
      const first = await start();
      try {
        await exec(first, "warmup");
      } finally {
        await first.teardown();
      }
    }
    inst = await start();
    if (inst.upper !== null) sample.upperFs = filesystemType(inst.upper);
    if (mode === "warm" && !fresh) await exec(inst, "warmup");
    if (mode === "cold") await dropCaches();
    else await syncAll();
    const pid = inst.daemonPid;
    const cpu0 = pid === null ? null : processCpuSeconds(pid);
    const counter = env.countRequests && inst.connection !== null ? await startRequestCounter(inst.connection) : null;
    try {
      sample.seconds = await exec(inst, "timed");
    } catch (e) {
      counter?.abort();
      throw e;
    }
    const cpu1 = pid === null ? null : processCpuSeconds(pid);
    if (cpu0 !== null && cpu1 !== null) sample.daemonCpuSeconds = cpu1 - cpu0;
    if (counter !== null) sample.requests = await counter.stop();
  } catch (e) {
    sample.error = e instanceof Error ? e.message : String(e);
  } finally {
    if (inst !== null) {
      try {
        await inst.teardown();
      } catch (e) {
        sample.error ??= `teardown: ${e instanceof Error ? e.message : String(e)}`;
      }
    }
  }
  return sample;
}

function describeSample(/** @type {Sample} */ s, /** @type {number} */ runs) {
  const head = `[${s.round}/${runs}] ${s.workload} ${s.mode} ${s.driver}:`;
  if (s.error !== null) return `${head} FAILED ${s.error}`;
  let line = `${head} ${s.seconds?.toFixed(3)} s`;
  if (s.daemonCpuSeconds !== null) line += `, daemon cpu ${s.daemonCpuSeconds.toFixed(2)} s`;
  if (s.requests !== null) line += `, ${s.requests.total} requests`;
  return line;
}

/** Unmounts whatever a failed teardown left below `scratch`, then removes it. */
async function cleanup(/** @type {string} */ scratch, /** @type {(l: string) => void} */ log) {
  for (const m of mountPoints()
    .filter((p) => p.startsWith(`${scratch}/`))
    .reverse()) {
    log(`cleanup: detaching ${m}`);
    await runCommand({ argv: ["umount", "-l", m] });
  }
  const still = mountPoints().filter((p) => p.startsWith(`${scratch}/`));
  if (still.length > 0) {
    log(`cleanup: not removing ${scratch}: still mounted: ${still.join(", ")}`);
    return;
  }
  await removeTree(scratch);
}
