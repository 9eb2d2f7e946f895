/**
 * One reply per request: a handler's work either resolves into the values the binding expects
 * or throws, and then the errno (EIO for the unexpected) is the reply. This is the adapter's
 * only catch-all, so a failing handler never leaves a request unanswered: a throw in the work
 * (even before it returns its promise) or in the formatting of its result becomes an errno
 * reply, and a throw in the binding's callback itself is logged, never left to become an
 * unhandled rejection, which would end the daemon and leave a dead mount.
 *
 * The core runs synchronously on the event loop, so a copy-up that must copy file data refuses
 * (DataCopyNeeded) rather than hold the loop: the data is staged off it and the work repeated.
 */
import { type Logger, toErrno } from "../errors.js";
import { DataCopyNeeded } from "../union/copy-up.js";
import type { UnionNode } from "../union/node-table.js";
import type { UnionFs } from "../union/union-fs.js";
import type { Caller } from "./native-mount.js";
import type { PathNodes } from "./path-nodes.js";

export type Reply = (res: number, ...values: unknown[]) => void;

export interface AdapterContext {
  readonly fs: UnionFs;
  readonly nodes: PathNodes;
  readonly log: Logger;
  /** who sent the request being handled (read synchronously at handler entry) */
  readonly caller: () => Caller;
  /**
   * copies the data a copy-up of the node needs, off the event loop; the release it resolves
   * with removes that copy if no copy-up took it
   */
  readonly stage: (node: UnionNode) => Promise<() => void>;
}

/** The context `reply` needs: where to log what cannot be an errno, and how to stage a copy. */
export type ReplyContext = Pick<AdapterContext, "log" | "stage">;

/** copy-ups one request may stage before it is given up as EIO (rename and link stage one) */
const MAX_STAGES = 4;

/** Runs a handler's work and sends exactly one reply: its result, or the errno it threw. */
export function reply<T>(ctx: ReplyContext, cb: Reply, work: () => T | Promise<T>, ok: (value: T) => unknown[]): void {
  let answered = false;
  const answer = (values: unknown[]): void => {
    if (answered) return;
    answered = true;
    try {
      cb(values[0] as number, ...values.slice(1));
    } catch (e) {
      ctx.log(`the reply to a request failed: ${e instanceof Error ? (e.stack ?? e.message) : String(e)}`);
    }
  };
  const fail = (e: unknown): void => answer([toErrno(e, ctx.log)]);
  run(ctx, work).then((value) => {
    let values: unknown[];
    try {
      values = ok(value);
    } catch (e) {
      fail(e);
      return;
    }
    answer(values);
  }, fail);
}

/**
 * Runs the work; a copy-up that needs its data staged gets it, and the work runs again. What
 * was staged is released once the work is done, whether it succeeded or failed: a staged copy
 * the work did not take (it failed for another reason, or no longer needed it) goes.
 */
async function run<T>(ctx: ReplyContext, work: () => T | Promise<T>): Promise<T> {
  const releases: Array<() => void> = [];
  try {
    for (let staged = 0; ; staged++) {
      try {
        return await work();
      } catch (e) {
        if (!(e instanceof DataCopyNeeded) || staged >= MAX_STAGES) throw e;
        releases.push(await ctx.stage(e.node));
      }
    }
  } finally {
    for (const release of releases) {
      try {
        release();
      } catch (e) {
        ctx.log(`removing a staged copy-up failed: ${e instanceof Error ? e.message : String(e)}`);
      }
    }
  }
}
