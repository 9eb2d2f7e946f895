/**
 * Shrinking a failing differential write sequence to a short script that still fails the same
 * way, for bug reports (UNIONFS_MINIMIZE=1 in write-differential.mount.test.ts).
 */
import { problemKind } from "./sequence-report.js";
import { type KnownGap, runSequence, type SequenceReport } from "./write-sequence.js";

/**
 * Shrinks a failing sequence's op list (greedy chunk removal, halving the chunk size) while a
 * problem of the same kind as its first one remains. Each try is a full run on fresh mounts.
 */
export async function minimize(failed: SequenceReport, knownGaps: readonly KnownGap[]): Promise<SequenceReport> {
  const first = failed.problems[0];
  if (first === undefined) return failed;
  const kind = problemKind(first);
  let best = failed;
  let ops = [...failed.ops];
  for (let chunk = Math.max(1, Math.floor(ops.length / 2)); chunk >= 1; chunk = Math.floor(chunk / 2)) {
    for (let at = 0; at < ops.length; ) {
      const candidate = [...ops.slice(0, at), ...ops.slice(at + chunk)];
      const r = await runSequence({
        seed: failed.seed,
        ops: 0,
        knownGaps,
        script: candidate,
        layout: failed.layout,
        transport: failed.transport,
      });
      if (r.problems.some((p) => problemKind(p) === kind)) {
        ops = candidate;
        best = r;
      } else {
        at += chunk;
      }
    }
  }
  return best;
}
