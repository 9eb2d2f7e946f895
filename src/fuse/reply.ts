/**
 * One reply per request: a handler's async work either resolves into the values the binding
 * expects or throws, and then the errno (EIO for the unexpected) is the reply. This is the
 * adapter's only catch-all, so a failing handler never leaves a request unanswered.
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

/** Runs an async handler and sends exactly one reply: its result, or the errno it threw. */
export function reply<T>(ctx: AdapterContext, cb: Reply, work: () => Promise<T>, ok: (value: T) => unknown[]): void {
  work().then(
    (value) => {
      const [res, ...rest] = ok(value);
      cb(res as number, ...rest);
    },
    (e: unknown) => cb(toErrno(e, ctx.log)),
  );
}
