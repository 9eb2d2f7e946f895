/**
 * The /dev/fuse transport: unionfs speaks the kernel's FUSE protocol itself. The main thread
 * opens /dev/fuse, mounts it with mount(2), answers INIT and supervises; worker threads (see
 * worker.ts) serve every other request, each with its own union core.
 *
 * It has the shape of src/daemon's Transport (checked by the registry there) without importing
 * it: imports point down, and the session sits above the transports.
 */
import { closeSync, readSync, writeSync } from "node:fs";
import { Worker } from "node:worker_threads";
import { FsError, type Logger } from "../errors.js";
import { openFuseDevice } from "../sys/fuse-device.js";
import { MNT_DETACH, MS_NODEV, MS_NOEXEC, MS_NOSUID, MS_RDONLY, mount, umount2 } from "../sys/mount.js";
import type { UnionSpec } from "../union/union-fs.js";
import { type Agreed, answerInit, describeAgreed, type InitWishes } from "./init.js";
import { InHeader, MIN_READ_BUFFER, Op, REQUEST_BUFFER, Size } from "./protocol.js";
import type { WorkerInput, WorkerMessage } from "./worker.js";

export interface DevFuseMountOptions {
  readOnly: boolean;
  shared: boolean;
  debug: boolean;
  /** mount(8) options: ro, nosuid, nodev, noexec */
  extra: readonly string[];
  log: Logger;
}

/** mount(8) option -> MS_ flag it sets */
const FLAG_OPTIONS: ReadonlyMap<string, number> = new Map([
  ["ro", MS_RDONLY],
  ["nosuid", MS_NOSUID],
  ["nodev", MS_NODEV],
  ["noexec", MS_NOEXEC],
]);
/** what FUSE accepts from the mounter and unionfs sets itself when it may */
const SET_ANYWAY = new Set(["allow_other", "default_permissions", "rw"]);

export interface DevFuseMount {
  readonly fd: number;
  readonly workers: readonly Worker[];
  readonly agreed: Agreed;
}

export const devfuseTransport = {
  async mount(spec: UnionSpec, mountpoint: string, options: DevFuseMountOptions): Promise<DevFuseMount> {
    const fd = openFuseDevice();
    try {
      mount("unionfs", mountpoint, "fuse.unionfs", mountFlags(options), mountData(fd, options));
    } catch (e) {
      closeSync(fd);
      if (e instanceof FsError && e.code === "EPERM") {
        throw new Error("mounting /dev/fuse needs root for now (use --transport fuse-native)");
      }
      throw e;
    }
    try {
      // registering a backing file takes CAP_SYS_ADMIN, which root has here
      const agreed = answerInitRequest(fd, { passthrough: process.geteuid?.() === 0 });
      if (options.debug) options.log(`devfuse: ${describeAgreed(agreed)}`);
      const workers = [
        await startWorker({ spec, sessionFd: fd, clone: false, agreed, debug: options.debug }, options.log, () =>
          abandon(mountpoint, fd),
        ),
      ];
      return { fd, workers, agreed };
    } catch (e) {
      abandon(mountpoint, fd);
      throw e;
    }
  },
} as const;

function mountFlags(options: DevFuseMountOptions): number {
  // FUSE mounts are nosuid,nodev unless asked otherwise, as libfuse makes them
  let flags = MS_NOSUID | MS_NODEV;
  if (options.readOnly) flags |= MS_RDONLY;
  for (const option of options.extra) {
    const flag = FLAG_OPTIONS.get(option);
    if (flag !== undefined) flags |= flag;
    else if (!SET_ANYWAY.has(option)) throw new Error(`mount option '${option}' is not supported`);
  }
  return flags;
}

function mountData(fd: number, options: DevFuseMountOptions): string {
  const uid = process.getuid?.() ?? 0;
  const gid = process.getgid?.() ?? 0;
  const data = [`fd=${fd}`, "rootmode=40000", `user_id=${uid}`, `group_id=${gid}`];
  if (options.shared) data.push("allow_other", "default_permissions");
  return data.join(",");
}

/** Reads the connection's first request, INIT, and answers it. */
function answerInitRequest(fd: number, wishes: InitWishes): Agreed {
  const req = Buffer.alloc(Math.max(MIN_READ_BUFFER, REQUEST_BUFFER));
  const len = readSync(fd, req, 0, req.length, null);
  if (len < Size.IN_HEADER || req.readUInt32LE(InHeader.OPCODE) !== Op.INIT) {
    throw new Error("the kernel's first FUSE request was not INIT");
  }
  const out = Buffer.alloc(Size.OUT_HEADER + Size.INIT_OUT);
  const { agreed, size } = answerInit(req.subarray(Size.IN_HEADER, len), out, Size.OUT_HEADER, wishes);
  out.writeUInt32LE(Size.OUT_HEADER + size, 0);
  out.writeInt32LE(0, 4);
  req.copy(out, 8, InHeader.UNIQUE, InHeader.UNIQUE + 8);
  writeSync(fd, out, 0, Size.OUT_HEADER + size);
  return agreed;
}

/** Starts a worker; resolves once its core is open and it serves. */
function startWorker(input: WorkerInput, log: Logger, onDeath: () => void): Promise<Worker> {
  const worker = new Worker(new URL("./worker.js", import.meta.url), { workerData: input });
  return new Promise((resolve, reject) => {
    let serving = false;
    worker.on("message", (m: WorkerMessage) => {
      if ("ready" in m) {
        serving = true;
        resolve(worker);
      } else if (!serving) {
        reject(new Error(m.failed.split("\n")[0]));
      } else {
        log(`a worker failed: ${m.failed}`);
      }
    });
    worker.on("error", (e) => {
      if (!serving) reject(e);
    });
    worker.on("exit", (code) => {
      if (!serving) {
        reject(new Error(`a worker exited with code ${code} before serving`));
      } else if (code !== 0) {
        // nobody reads the connection any more: end it rather than leave requests hanging
        log(`a worker exited with code ${code}; unmounting`);
        onDeath();
      }
    });
  });
}

/** Ends a mount no one will serve: detach it and drop the connection's last fd, aborting it. */
function abandon(mountpoint: string, fd: number): void {
  try {
    umount2(mountpoint, MNT_DETACH);
  } catch {
    // already gone
  }
  try {
    closeSync(fd);
  } catch {
    // already closed
  }
}
