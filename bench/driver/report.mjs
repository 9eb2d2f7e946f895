// @ts-check
/**
 * From samples to figures: per (workload, mode, driver) the median and min–max of the wall
 * time, of the ratio to the baseline taken per round (the figure that counts on a noisy
 * machine), of the daemon's CPU time, of the FUSE requests and of CPU per request; then the
 * same as markdown tables. With `--compare`, also each unionfs driver's time over its `@base`
 * twin's, per round.
 */
import { machineLine } from "./machine.mjs";
import { describeUpperPlace } from "./upper-fs.mjs";

/** @typedef {{median: number, min: number, max: number}} Stat */

/**
 * @typedef {object} Cell
 * @property {number} runs        successful timed runs
 * @property {number} failures
 * @property {string | null} error  the first failure
 * @property {Stat | null} seconds
 * @property {Stat | null} ratio   to the baseline, per round
 * @property {Stat | null} daemonCpuSeconds
 * @property {Stat | null} requests
 * @property {Stat | null} usPerRequest  daemon CPU per FUSE request, per run
 * @property {Record<string, number>} requestsByOp  median per opcode
 */

/** @typedef {{workload: string, mode: string, cells: Record<string, Cell>}} Row */

export function stat(/** @type {number[]} */ values) {
  if (values.length === 0) return null;
  const s = [...values].sort((a, b) => a - b);
  const at = (/** @type {number} */ i) => s[i] ?? Number.NaN;
  const mid = Math.floor(s.length / 2);
  const median = s.length % 2 === 1 ? at(mid) : (at(mid - 1) + at(mid)) / 2;
  return { median, min: at(0), max: at(s.length - 1) };
}

/**
 * @param {import("./harness.mjs").Sample[]} samples
 * @param {{drivers: string[], workloads: string[], modes: readonly string[], baseline?: string}} shape
 * @returns {Row[]}
 */
export function summarize(samples, shape) {
  const baseline = shape.baseline ?? "overlay";
  /** @type {Row[]} */
  const rows = [];
  for (const workload of shape.workloads) {
    for (const mode of shape.modes) {
      const here = samples.filter((s) => s.workload === workload && s.mode === mode);
      /** @type {Record<string, Cell>} */
      const cells = {};
      for (const driver of shape.drivers) {
        const mine = here.filter((s) => s.driver === driver);
        const ok = mine.filter((s) => s.error === null && s.seconds !== null);
        const ratios = [];
        for (const s of ok) {
          const base = here.find(
            (b) => b.driver === baseline && b.round === s.round && b.error === null && b.seconds !== null,
          );
          if (base?.seconds) ratios.push(/** @type {number} */ (s.seconds) / base.seconds);
        }
        const cpu = ok.flatMap((s) => (s.daemonCpuSeconds === null ? [] : [s.daemonCpuSeconds]));
        const reqs = ok.flatMap((s) => (s.requests === null ? [] : [s.requests.total]));
        const perReq = ok.flatMap((s) =>
          s.daemonCpuSeconds !== null && s.requests !== null && s.requests.total > 0
            ? [(s.daemonCpuSeconds * 1e6) / s.requests.total]
            : [],
        );
        /** @type {Record<string, number>} */
        const byOp = {};
        const ops = new Set(ok.flatMap((s) => Object.keys(s.requests?.byOp ?? {})));
        for (const op of ops) byOp[op] = stat(ok.map((s) => s.requests?.byOp[op] ?? 0))?.median ?? 0;
        cells[driver] = {
          runs: ok.length,
          failures: mine.length - ok.length,
          error: mine.find((s) => s.error !== null)?.error ?? null,
          seconds: stat(ok.map((s) => /** @type {number} */ (s.seconds))),
          ratio: stat(ratios),
          daemonCpuSeconds: stat(cpu),
          requests: stat(reqs),
          usPerRequest: stat(perReq),
          requestsByOp: byOp,
        };
      }
      rows.push({ workload, mode, cells });
    }
  }
  return rows;
}

/**
 * Per round, `a`'s time over `b`'s on one workload and mode: the median (min–max) of the ratios,
 * and in how many of the rounds `a` was faster.
 * @param {import("./harness.mjs").Sample[]} samples
 * @returns {{ratio: Stat, faster: number, rounds: number} | null}
 */
export function pairedRatio(
  samples,
  /** @type {string} */ workload,
  /** @type {string} */ mode,
  /** @type {string} */ a,
  /** @type {string} */ b,
) {
  const ok = (/** @type {string} */ driver) =>
    new Map(
      samples
        .filter(
          (s) => s.workload === workload && s.mode === mode && s.driver === driver && s.error === null && s.seconds,
        )
        .map((s) => [s.round, /** @type {number} */ (s.seconds)]),
    );
  const times = ok(a);
  const other = ok(b);
  const ratios = [];
  for (const [round, t] of times) {
    const u = other.get(round);
    if (u !== undefined) ratios.push(t / u);
  }
  const ratio = stat(ratios);
  return ratio === null ? null : { ratio, faster: ratios.filter((r) => r < 1).length, rounds: ratios.length };
}

/** 3 significant digits, no exponent. */
export function num(/** @type {number} */ x) {
  if (x === 0) return "0";
  const digits = Math.max(0, 2 - Math.floor(Math.log10(Math.abs(x))));
  return x.toFixed(Math.min(digits, 4));
}

function range(/** @type {Stat} */ s, /** @type {(x: number) => string} */ f = num) {
  return s.min === s.max ? "" : ` (${f(s.min)}–${f(s.max)})`;
}

function failed(/** @type {Cell} */ c) {
  return c.runs === 0 ? `failed: ${(c.error ?? "no run").replaceAll("|", "\\|").slice(0, 80)}` : null;
}

/** @param {any} report the object harness.mjs writes as results.json */
export function renderMarkdown(report) {
  /** @type {string[]} */
  const drivers = report.config.drivers.map((/** @type {{name: string}} */ d) => d.name);
  const baseline = report.config.baseline;
  const others = drivers.filter((d) => d !== baseline);
  /** @type {Record<string, string>} */
  const titles = Object.fromEntries(
    report.config.workloads.map((/** @type {{id: string, title: string}} */ w) => [w.id, w.title]),
  );
  /** @type {Row[]} */
  const rows = report.summary;
  const out = [];
  out.push("# Storage-driver benchmark", "");
  out.push(`- Run: ${report.started} – ${report.finished}${report.interrupted ? " (interrupted)" : ""}`);
  if (report.machine !== null) out.push(`- Machine: ${machineLine(report.machine)}`);
  if (report.machine?.packages?.length > 0) out.push(`- Packages: ${report.machine.packages.join(", ")}`);
  const ds = report.config.dataset;
  out.push(`- Data set: ${describeDataset(ds)}`);
  if (report.config.uppers !== undefined) out.push(`- Uppers: ${describeUppers(report)}`);
  out.push(
    `- ${report.config.runs} round(s), drivers round-robin, modes: ${report.config.modes.join(", ")}; every run on a fresh mount`,
  );
  for (const n of report.notes) out.push(`- Note: ${n}`);
  out.push("");
  if (drivers.includes(baseline) && others.length > 0) {
    out.push(`## Time relative to ${baseline}`, "");
    out.push(`Median of the per-round ratio (min–max); below 1 is faster than ${baseline}.`, "");
    out.push(`| workload | mode | ${others.join(" | ")} |`, `|---|---|${others.map(() => "---:").join("|")}|`);
    for (const r of rows) {
      const cells = others.map((d) => {
        const c = /** @type {Cell} */ (r.cells[d]);
        return (
          failed(c) ?? (c.ratio === null ? "–" : `${c.ratio.median.toFixed(2)}×${range(c.ratio, (x) => x.toFixed(2))}`)
        );
      });
      out.push(`| ${titles[r.workload] ?? r.workload} | ${r.mode} | ${cells.join(" | ")} |`);
    }
    out.push("");
  }
  const twins = drivers.filter((d) => drivers.includes(`${d}@base`));
  if (twins.length > 0) {
    out.push(`## Against the build in ${report.config.compare} (--compare)`, "");
    out.push("Per round, each driver's time over its `@base` twin's: median (min–max), and the rounds it was faster.");
    out.push("Below 1 is faster than the other build.", "");
    out.push(`| workload | mode | ${twins.map((d) => `${d} / ${d}@base`).join(" | ")} |`);
    out.push(`|---|---|${twins.map(() => "---:").join("|")}|`);
    for (const r of rows) {
      const cells = twins.map((d) => {
        const p = pairedRatio(report.samples, r.workload, r.mode, d, `${d}@base`);
        return p === null
          ? "–"
          : `${p.ratio.median.toFixed(2)}${range(p.ratio, (x) => x.toFixed(2))}, ${p.faster}/${p.rounds}`;
      });
      out.push(`| ${titles[r.workload] ?? r.workload} | ${r.mode} | ${cells.join(" | ")} |`);
    }
    out.push("");
  }
  out.push("## Wall time, seconds", "", "Median (min–max).", "");
  out.push(`| workload | mode | ${drivers.join(" | ")} |`, `|---|---|${drivers.map(() => "---:").join("|")}|`);
  for (const r of rows) {
    const cells = drivers.map((d) => {
      const c = /** @type {Cell} */ (r.cells[d]);
      return failed(c) ?? (c.seconds === null ? "–" : `${num(c.seconds.median)}${range(c.seconds)}`);
    });
    out.push(`| ${titles[r.workload] ?? r.workload} | ${r.mode} | ${cells.join(" | ")} |`);
  }
  out.push("");
  const fuse = drivers.filter((d) => rows.some((r) => r.cells[d]?.daemonCpuSeconds !== null));
  if (fuse.length > 0) {
    out.push("## FUSE daemons: CPU time and requests", "");
    out.push("Medians over the timed runs. CPU is the daemon's user+system time (all threads, 10 ms ticks);");
    out.push("requests are counted by the kernel (tracepoint fuse:fuse_request_send, FORGET not included).", "");
    out.push(
      "| workload | mode | driver | daemon CPU, s | requests | µs CPU / request | requests by type |",
      "|---|---|---|---:|---:|---:|---|",
    );
    for (const r of rows) {
      for (const d of fuse) {
        const c = r.cells[d];
        if (c === undefined || c.runs === 0) continue;
        const top = Object.entries(c.requestsByOp)
          .sort((a, b) => b[1] - a[1])
          .slice(0, 4)
          .map(([op, n]) => `${op} ${Math.round(n)}`)
          .join(", ");
        out.push(
          `| ${titles[r.workload] ?? r.workload} | ${r.mode} | ${d} | ${c.daemonCpuSeconds === null ? "–" : num(c.daemonCpuSeconds.median)} | ${
            c.requests === null ? "–" : Math.round(c.requests.median)
          } | ${c.usPerRequest === null ? "–" : num(c.usPerRequest.median)} | ${top} |`,
        );
      }
    }
    out.push("");
  }
  return `${out.join("\n")}\n`;
}

/** Where the uppers were meant to go, and the filesystems statfs found them on. */
function describeUppers(/** @type {any} */ report) {
  /** @type {Set<string>} */
  const seen = new Set();
  for (const s of report.samples) if (typeof s.upperFs === "string") seen.add(s.upperFs);
  const found = seen.size === 0 ? "" : `; statfs of each instance's upper: ${[...seen].join(", ")}`;
  return `${describeUpperPlace(report.config.uppers)}${found}`;
}

function describeDataset(/** @type {any} */ ds) {
  const p = ds.parts ?? {};
  const bits = [];
  if (p.tree)
    bits.push(
      `tree/ ${p.tree.files} small files from /usr/share over 3 layers (${p.tree.mergedEntries} merged entries)`,
    );
  if (p.big) bits.push(`big file ${ds.bigMiB} MiB`);
  if (p.rmdir) bits.push(`rm -rf dir ${p.rmdir.entries} entries over 2 layers`);
  if (p.repo) bits.push(`git checkout ${p.repo.files} files`);
  if (p.pylib) bits.push(`python: ${p.pylib.topLevelImports} imports loading ${p.pylib.modulesLoaded} modules`);
  if (p.untar) bits.push(`untar ${p.untar.entries} entries`);
  return `--files ${ds.files} --big-mib ${ds.bigMiB}: ${bits.join("; ")}`;
}
