/**
 * `unionfs bench`: the storage-driver comparison (issue 6). The same workloads run on unionfs,
 * kernel overlayfs, fuse-overlayfs and a bare directory, round-robin, and the results go to a
 * folder as results.json, report.md and chart.svg. The harness lives in bench/driver/ (plain
 * ESM, so `npm run bench` and this command share it); this module is its command line.
 *
 *   unionfs bench [--drivers a,b] [--workloads a,b] [--runs N] [--modes cold,warm] [--upper-fs tmpfs]
 *                 [--compare DIR] [--quick] [--files N] [--big-mib M] [--data DIR] [--out DIR]
 *                 [--keep-data] [--json]
 */
import { existsSync } from "node:fs";
import { dirname, join, resolve } from "node:path";
import { fileURLToPath } from "node:url";
import { UserError } from "../errors.js";

type Mode = "cold" | "warm";
/** data: uppers next to the lowers, on the data set's filesystem; tmpfs: on a tmpfs of the run's own */
type UpperFs = "data" | "tmpfs";

export interface BenchArgs {
  drivers: string[] | null;
  workloads: string[] | null;
  runs: number;
  modes: Mode[];
  upperFs: UpperFs;
  /** another checkout, built, whose unionfs runs in the same rounds as `unionfs@base` */
  compare: string | null;
  files: number;
  bigMiB: number;
  dataDir: string;
  scratchDir: string;
  outDir: string;
  keepData: boolean;
  json: boolean;
  list: boolean;
  help: boolean;
}

interface HarnessModule {
  runBench(opts: Omit<BenchArgs, "json" | "list" | "help"> & { log: (line: string) => void }): Promise<{
    report: unknown;
    markdown: string;
    outDir: string;
  }>;
  listDrivers(): { name: string; title: string }[];
  listWorkloads(): { id: string; title: string }[];
}

/** The full run (what bench/RESULTS.md reports) and the CI smoke size. */
const FULL = { files: 10_000, bigMiB: 1024, runs: 5, modes: ["cold", "warm"] as Mode[] };
const QUICK = { files: 200, bigMiB: 8, runs: 1, modes: ["warm"] as Mode[] };
const BENCH_HOME = "/var/tmp/unionfs-bench";
const HARNESS = new URL("../../bench/driver/harness.mjs", import.meta.url);
const RESULTS = new URL("../../bench/results/", import.meta.url);

const USAGE = `usage: unionfs bench [options]
  --drivers LIST     unionfs,overlay,fuse-overlayfs,bare (default: all that can run here);
                     unionfs-volatile,overlay-volatile on request (copy-ups not synced)
  --workloads LIST   workload ids (default: all; --list shows them)
  --runs N           rounds; every driver runs every workload once per round (default ${FULL.runs}, --quick ${QUICK.runs})
  --modes LIST       cold,warm (default both, --quick warm)
  --upper-fs FS      where every driver's upper and work dir go: data (default: the data set's
                     filesystem, next to the lowers) or tmpfs (a tmpfs the run mounts and unmounts,
                     so copy-ups cross filesystems; bare's writable root goes there too)
  --compare DIR      also run the unionfs of another checkout (built: DIR/dist/cli/main.js, with
                     DIR's own node_modules) as unionfs@base, next to every unionfs driver that
                     runs, in the same rounds; the report adds per-round ratios to it
  --quick            a tiny data set, one round, warm runs only: a smoke run under a minute
  --files N          small files in the data set (default ${FULL.files}, --quick ${QUICK.files})
  --big-mib M        size of the big file and of the sequential writes (default ${FULL.bigMiB}, --quick ${QUICK.bigMiB})
  --data DIR         data set directory (default ${BENCH_HOME}/data-fN-bM)
  --out DIR          results directory (default bench/results/<timestamp>)
  --keep-data        keep the data set for the next run
  --json             print results.json instead of the markdown report
  --list             list drivers and workloads`;

function positiveInt(flag: string, value: string): number {
  const n = Number(value);
  if (!Number.isInteger(n) || n <= 0) throw new UserError(`${flag} needs a positive integer, not '${value}'`);
  return n;
}

function list(value: string): string[] {
  return value
    .split(",")
    .map((s) => s.trim())
    .filter((s) => s.length > 0);
}

/** argv (after `bench`) to options; defaults depend on --quick, so they are applied last. */
export function parseBenchArgs(argv: readonly string[], now = new Date()): BenchArgs {
  const given: Partial<BenchArgs> = {};
  let quick = false;
  for (let i = 0; i < argv.length; i++) {
    const flag = argv[i] as string;
    const eq = flag.indexOf("=");
    const name = flag.startsWith("--") && eq > 0 ? flag.slice(0, eq) : flag;
    const inline = name === flag ? undefined : flag.slice(eq + 1);
    const value = (): string => {
      const v = inline ?? argv[++i];
      if (v === undefined) throw new UserError(`${name} needs a value`);
      return v;
    };
    if (name === "--drivers") given.drivers = list(value());
    else if (name === "--workloads") given.workloads = list(value());
    else if (name === "--runs") given.runs = positiveInt(name, value());
    else if (name === "--modes") given.modes = parseModes(value());
    else if (name === "--upper-fs") given.upperFs = parseUpperFs(value());
    else if (name === "--compare") given.compare = resolve(value());
    else if (name === "--files") given.files = positiveInt(name, value());
    else if (name === "--big-mib") given.bigMiB = positiveInt(name, value());
    else if (name === "--data") given.dataDir = value();
    else if (name === "--out") given.outDir = value();
    else if (name === "--quick") quick = true;
    else if (name === "--keep-data") given.keepData = true;
    else if (name === "--json") given.json = true;
    else if (name === "--list") given.list = true;
    else if (name === "--help" || name === "-h") given.help = true;
    else throw new UserError(`unknown option ${flag}\n${USAGE}`);
  }
  const size = quick ? QUICK : FULL;
  const files = given.files ?? size.files;
  const bigMiB = given.bigMiB ?? size.bigMiB;
  const dataDir = given.dataDir ?? join(BENCH_HOME, `data-f${files}-b${bigMiB}`);
  const stamp = now.toISOString().replace(/[:.]/g, "-");
  return {
    drivers: given.drivers ?? null,
    workloads: given.workloads ?? null,
    runs: given.runs ?? size.runs,
    modes: given.modes ?? size.modes,
    upperFs: given.upperFs ?? "data",
    compare: given.compare ?? null,
    files,
    bigMiB,
    dataDir,
    scratchDir: dirname(dataDir),
    outDir: given.outDir ?? join(fileURLToPath(RESULTS), stamp),
    keepData: given.keepData ?? false,
    json: given.json ?? false,
    list: given.list ?? false,
    help: given.help ?? false,
  };
}

function parseModes(value: string): Mode[] {
  const modes = list(value);
  for (const m of modes) if (m !== "cold" && m !== "warm") throw new UserError(`unknown mode '${m}' (cold, warm)`);
  if (modes.length === 0) throw new UserError("--modes needs cold, warm or both");
  return modes as Mode[];
}

function parseUpperFs(value: string): UpperFs {
  if (value !== "data" && value !== "tmpfs") throw new UserError(`unknown --upper-fs '${value}' (data, tmpfs)`);
  return value;
}

export async function benchCommand(argv: string[]): Promise<number> {
  const args = parseBenchArgs(argv);
  if (args.help) {
    process.stdout.write(`${USAGE}\n`);
    return 0;
  }
  if (args.compare !== null && !existsSync(join(args.compare, "dist", "cli", "main.js"))) {
    throw new UserError(`--compare ${args.compare}: no dist/cli/main.js there (npm ci or npm run build in it)`);
  }
  const harness = (await import(HARNESS.href)) as HarnessModule;
  if (args.list) {
    for (const d of harness.listDrivers()) process.stdout.write(`driver    ${d.name.padEnd(18)} ${d.title}\n`);
    for (const w of harness.listWorkloads()) process.stdout.write(`workload  ${w.id.padEnd(18)} ${w.title}\n`);
    return 0;
  }
  const { json, list: _list, help: _help, ...opts } = args;
  let result: Awaited<ReturnType<HarnessModule["runBench"]>>;
  try {
    result = await harness.runBench({ ...opts, log: (line) => process.stderr.write(`${line}\n`) });
  } catch (e) {
    if (e instanceof Error && e.name === "BenchSetupError") throw new UserError(e.message);
    throw e;
  }
  process.stdout.write(json ? `${JSON.stringify(result.report, null, 2)}\n` : result.markdown);
  process.stderr.write(`results: ${result.outDir}\n`);
  return 0;
}
