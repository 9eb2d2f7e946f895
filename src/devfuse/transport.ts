/**
 * The /dev/fuse transport: unionfs speaks the kernel's FUSE protocol itself. The main thread
 * gets a mounted /dev/fuse fd (mount(2) where it may, else from the setuid fusermount3, as
 * libfuse does for an unprivileged user), answers INIT and supervises; worker threads (see
 * worker.ts) serve every other request, each with its own union core.
 *
 * It has the shape of src/daemon's Transport (checked by the registry there) without importing
 * it: imports point down, and the session sits above the transports.
 */
import { closeSync, readSync, writeSync } from "node:fs";
import { Worker } from "node:worker_threads";
import type { Logger } from "../errors.js";
import { openFuseDevice } from "../sys/fuse-device.js";
import { mountWithFusermount, unmountWithFusermount } from "../sys/fusermount.js";
import { MNT_DETACH, MS_NODEV, MS_NOEXEC, MS_NOSUID, MS_RDONLY, mount, umount2 } from "../sys/mount.js";
import { mayMountDirectly } from "../sys/privilege.js";
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
/** what FUSE accepts from the mounter: set by unionfs as root; allow_other on request otherwise */
const SET_ANYWAY = new Set(["allow_other", "default_permissions", "rw"]);

export interface DevFuseMount {
  readonly fd: number;
  readonly workers: readonly Worker[];
  readonly agreed: Agreed;
  /** resolves once every worker has exited: at the unmount (ENODEV), or when one dies */
  readonly ended: Promise<void>;
}

interface StartedWorker {
  readonly worker: Worker;
  /** resolves when the thread exits, however */
  readonly exited: Promise<void>;
}

export const devfuseTransport = {
  async mount(spec: UnionSpec, mountpoint: string, options: DevFuseMountOptions): Promise<DevFuseMount> {
    const direct = mayMountDirectly();
    const fd = direct
      ? mountDirectly(mountpoint, options)
      : mountWithFusermount(mountpoint, fusermountOptions(options));
    const end = () => abandon(mountpoint, fd, direct, options.log);
    try {
      // registering a backing file takes CAP_SYS_ADMIN, which root has here
      const agreed = answerInitRequest(fd, { passthrough: process.geteuid?.() === 0 });
      if (options.debug) options.log(`devfuse: ${describeAgreed(agreed)}`);
      const started = [
        await startWorker({ spec, sessionFd: fd, clone: false, agreed, debug: options.debug }, options.log, () => {
          void end();
        }),
      ];
      const ended = Promise.all(started.map((s) => s.exited)).then(() => {});
      return { fd, workers: started.map((s) => s.worker), agreed, ended };
    } catch (e) {
      await end();
      throw e;
    }
  },
} as const;

/** Opens /dev/fuse and mounts it with mount(2); returns the session's fd. */
function mountDirectly(mountpoint: string, options: DevFuseMountOptions): number {
  const fd = openFuseDevice();
  try {
    let flags = 0;
    for (const name of flagOptions(options)) flags |= FLAG_OPTIONS.get(name) ?? 0;
    mount("unionfs", mountpoint, "fuse.unionfs", flags, mountData(fd, options));
    return fd;
  } catch (e) {
    closeSync(fd);
    throw e;
  }
}

/** The mount(8) flags in effect (FLAG_OPTIONS names); refuses options this transport lacks. */
function flagOptions(options: DevFuseMountOptions): Set<string> {
  // FUSE mounts are nosuid,nodev unless asked otherwise, as libfuse makes them
  const flags = new Set(["nosuid", "nodev"]);
  if (options.readOnly) flags.add("ro");
  for (const option of options.extra) {
    if (FLAG_OPTIONS.has(option)) flags.add(option);
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

/**
 * fusermount3's -o list, in libfuse's shape: rw or ro, the flags, the kernel's options, then
 * source and type (`unionfs`, `fuse.unionfs`, as mount(2) gets them above); fusermount3 adds
 * fd, rootmode, user_id and group_id. allow_other only when asked for: fusermount3 grants it
 * to a user only where /etc/fuse.conf has user_allow_other, and says so otherwise.
 */
function fusermountOptions(options: DevFuseMountOptions): string[] {
  const flags = flagOptions(options);
  const list = [flags.has("ro") ? "ro" : "rw", ...[...flags].filter((f) => f !== "ro"), "default_permissions"];
  if (options.shared || options.extra.includes("allow_other")) list.push("allow_other");
  list.push("fsname=unionfs", "subtype=unionfs");
  return list;
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
function startWorker(input: WorkerInput, log: Logger, onDeath: () => void): Promise<StartedWorker> {
  const worker = new Worker(new URL("./worker.js", import.meta.url), { workerData: input });
  const exited = new Promise<void>((resolve) => worker.once("exit", () => resolve()));
  return new Promise((resolve, reject) => {
    let serving = false;
    worker.on("message", (m: WorkerMessage) => {
      if ("ready" in m) {
        serving = true;
        resolve({ worker, exited });
      } else if (!serving) {
        reject(new Error(m.failed.split("\n")[0]));
      } else {
        log(`a worker failed: ${m.failed}`);
      }
    });
    worker.on("error", (e) => {
      if (!serving) reject(e);
      // a worker out of heap cannot send its failure itself: without this line the log only
      // says that it exited
      else if ((e as { code?: string }).code === "ERR_WORKER_OUT_OF_MEMORY") log(`a worker failed: ${e.message}`);
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

/**
 * Ends a mount no one will serve: drop the connection's fd, then detach the mount. The fd goes
 * first, as in libfuse's fuse_kern_unmount: the last fd of a connection aborts it, so a process
 * still inside a busy mount, which a lazy detach leaves alive, gets ENOTCONN instead of waiting
 * forever for a reply.
 */
async function abandon(mountpoint: string, fd: number, direct: boolean, log: Logger): Promise<void> {
  try {
    closeSync(fd);
  } catch {
    // already closed
  }
  try {
    if (direct) umount2(mountpoint, MNT_DETACH);
    else await unmountWithFusermount(mountpoint, true);
  } catch (e) {
    log(`cannot detach ${mountpoint}: ${e instanceof Error ? e.message : String(e)}`);
  }
}
