/**
 * Reading the results of differential write sequences: one failing sequence as a replayable
 * report, and summaries of many (time per phase, outcome per operation).
 */
import type { SequenceReport } from "./write-sequence.js";

export function formatReport(r: SequenceReport): string {
  return [
    `seed ${r.seed}, ${r.transport}, ${r.layout.name} ` +
      `(replay: UNIONFS_TRANSPORTS=${r.transport} UNIONFS_LAYOUTS=${r.layout.name} UNIONFS_SEED=${r.seed}):`,
    ...r.problems.map((p) => `  ! ${p}`),
    "  ops:",
    ...r.steps.map((s) => `    ${s}`),
  ].join("\n");
}

/** The kind of a problem, stable when earlier ops are removed: phase plus compared field. */
export function problemKind(problem: string): string {
  const step = /^step \d+: (\S+) /.exec(problem);
  if (step !== null) return `step:${step[1]}`;
  const view = /^([^:]+): .*?: (\S+) kernel=/.exec(problem);
  if (view !== null) return `${view[1]}:${view[2]}`;
  return problem.replace(/\d+/g, "N").slice(0, 60);
}

/** Mean wall time per phase, to keep an eye on the budget. */
export function timingSummary(reports: readonly SequenceReport[]): string {
  const sums: Record<string, number> = {};
  for (const r of reports) for (const [k, v] of Object.entries(r.timing)) sums[k] = (sums[k] ?? 0) + v;
  const parts = Object.entries(sums).map(([k, v]) => `${k} ${Math.round(v / Math.max(1, reports.length))} ms`);
  return `${reports.length} sequences, mean per sequence: ${parts.join(", ")}`;
}

/** How often each operation ran and how it ended, to see what the generator reaches. */
export function outcomeSummary(reports: readonly SequenceReport[]): string {
  const counts = new Map<string, Map<string, number>>();
  for (const r of reports) {
    for (const line of r.steps) {
      const m = /^\s*\d+: (\S+) .*=> (\S+)/.exec(line);
      if (m === null) continue;
      const [, kind = "?", code = "?"] = m;
      const byCode = counts.get(kind) ?? new Map<string, number>();
      byCode.set(code, (byCode.get(code) ?? 0) + 1);
      counts.set(kind, byCode);
    }
  }
  const lines = [...counts.entries()]
    .sort(([a], [b]) => (a < b ? -1 : 1))
    .map(([kind, byCode]) => `  ${kind}: ${[...byCode.entries()].map(([c, n]) => `${c} ${n}`).join(", ")}`);
  return `outcomes:\n${lines.join("\n")}`;
}
