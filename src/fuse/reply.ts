/**
 * One reply per request: a handler's work either resolves into the values the binding expects
 * or throws, and then the errno (EIO for the unexpected) is the reply. This is the adapter's
 * only catch-all, so a failing handler never leaves a request unanswered: a throw in the work
 * (even before it returns its promise) or in the formatting of its result becomes an errno
 * reply, and a throw in the binding's callback itself is logged, never left to become an
 * unhandled rejection, which would end the daemon and leave a dead mount.
 */
import { type Logger, toErrno } from "../errors.js";
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
}

/** The context `reply` needs: where to log what cannot be an errno. */
export type ReplyContext = Pick<AdapterContext, "log">;

/** Runs a handler's work and sends exactly one reply: its result, or the errno it threw. */
export function reply<T>(ctx: ReplyContext, cb: Reply, work: () => Promise<T>, ok: (value: T) => unknown[]): void {
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
  new Promise<T>((resolve) => resolve(work())).then((value) => {
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
