/**
 * A worker thread of the /dev/fuse transport: opens its own union core on the prepared stack,
 * then reads a request, handles it and replies, synchronously, until the mount goes away
 * (ENODEV). No event loop turns while it serves, so a request costs the system calls it makes
 * and nothing more.
 */
import { readSync, writeSync } from "node:fs";
import { parentPort, workerData } from "node:worker_threads";
import { cloneFuseDevice } from "../sys/fuse-device.js";
import { UnionFs, type UnionSpec } from "../union/union-fs.js";
import { Dispatcher } from "./dispatch.js";
import type { Agreed } from "./init.js";
import { REQUEST_BUFFER, Size } from "./protocol.js";

export interface WorkerInput {
  readonly spec: UnionSpec;
  /** the session's /dev/fuse fd */
  readonly sessionFd: number;
  /** read through a clone of the session fd of its own (else the session fd itself) */
  readonly clone: boolean;
  readonly agreed: Agreed;
  readonly debug: boolean;
}

export type WorkerMessage = { ready: true } | { failed: string };

/** read(2) errors after which the next read may succeed */
const RETRY = new Set(["EINTR", "EAGAIN", "ENOENT"]);

function log(message: string): void {
  writeSync(2, `unionfs: ${message}\n`);
}

function serve(input: WorkerInput): void {
  let dispatcher: Dispatcher | undefined;
  const fs = UnionFs.open(input.spec, {
    log,
    dataCopy: "inline",
    copiedUp: (node) => dispatcher?.forgetAttrs(node),
  });
  const devFd = input.clone ? cloneFuseDevice(input.sessionFd) : input.sessionFd;
  const req = Buffer.allocUnsafe(REQUEST_BUFFER);
  const out = Buffer.allocUnsafe(Size.OUT_HEADER + REQUEST_BUFFER);
  dispatcher = new Dispatcher(fs, devFd, out, {
    setxattrExt: input.agreed.setxattrExt,
    passthrough: input.agreed.passthrough,
    debug: input.debug,
    log,
  });
  parentPort?.postMessage({ ready: true } satisfies WorkerMessage);
  while (!dispatcher.destroyed) {
    let len: number;
    try {
      len = readSync(devFd, req, 0, req.length, null);
    } catch (e) {
      const code = (e as { code?: string }).code ?? "";
      if (RETRY.has(code)) continue;
      // ENODEV: unmounted, or the connection was aborted
      if (code === "ENODEV") return;
      throw e;
    }
    dispatcher.handle(req, len);
  }
}

try {
  serve(workerData as WorkerInput);
} catch (e) {
  const message = e instanceof Error ? (e.stack ?? e.message) : String(e);
  parentPort?.postMessage({ failed: message } satisfies WorkerMessage);
  throw e;
}
