#!/usr/bin/env node
// @ts-check
/**
 * The floor of the FUSE binding: a null filesystem on fuse-native (libfuse 2.9 high-level API)
 * whose handlers answer from memory at once, served by a separate Node process, measured the
 * way bench/driver measures unionfs (daemon CPU from /proc, requests counted by the kernel).
 * Whatever unionfs spends per request above this floor is the union core's; the floor itself
 * is the binding's and the protocol's.
 *
 *   node bench/fuse-floor.mjs [--requests N]      (root; prints a markdown table)
 *
 * Workloads: stat of one file with entry/attr timeouts 0 (LOOKUP + GETATTR each time), 4 KiB
 * writes (WRITE + GETXATTR security.capability each, as with unionfs), 128 KiB reads.
 */
import { spawn } from "node:child_process";
import { mkdirSync, mkdtempSync, statSync } from "node:fs";
import { join } from "node:path";
import { fileURLToPath } from "node:url";
import { kernelDev, startRequestCounter } from "./driver/fuse-requests.mjs";
import { isAlive, isMounted, mustRun, processCpuSeconds, runCommand, waitFor } from "./driver/proc.mjs";

const SELF = fileURLToPath(import.meta.url);
const ENODATA = -61;
const ENOENT = -2;

async function serve(/** @type {string} */ mnt) {
  /** @type {any} */
  const Fuse = (await import("fuse-native")).default;
  const now = new Date();
  const stat = (/** @type {number} */ mode, /** @type {number} */ size) => ({
    mtime: now,
    atime: now,
    ctime: now,
    nlink: 1,
    size,
    mode,
    uid: 0,
    gid: 0,
    ino: 2,
    dev: 0,
    rdev: 0,
    blksize: 4096,
    blocks: size / 512,
  });
  const dir = stat(0o40755, 4096);
  const file = stat(0o100644, 2 ** 40);
  /** @type {Record<string, Function>} */
  const ops = {
    getattr: (/** @type {string} */ p, /** @type {Function} */ cb) =>
      p === "/" ? cb(0, dir) : p === "/f" ? cb(0, file) : cb(ENOENT),
    readdir: (/** @type {string} */ _p, /** @type {Function} */ cb) => cb(0, ["f"]),
    open: (/** @type {string} */ _p, /** @type {number} */ _flags, /** @type {Function} */ cb) => cb(0, 42),
    release: (/** @type {string} */ _p, /** @type {number} */ _fd, /** @type {Function} */ cb) => cb(0),
    read: (
      /** @type {string} */ _p,
      /** @type {number} */ _fd,
      /** @type {Buffer} */ _buf,
      /** @type {number} */ len,
      /** @type {number} */ _pos,
      /** @type {Function} */ cb,
    ) => cb(len),
    write: (
      /** @type {string} */ _p,
      /** @type {number} */ _fd,
      /** @type {Buffer} */ _buf,
      /** @type {number} */ len,
      /** @type {number} */ _pos,
      /** @type {Function} */ cb,
    ) => cb(len),
    truncate: (/** @type {string} */ _p, /** @type {number} */ _size, /** @type {Function} */ cb) => cb(0),
    getxattr: (
      /** @type {string} */ _p,
      /** @type {string} */ _name,
      /** @type {number} */ _pos,
      /** @type {Function} */ cb,
    ) => cb(ENODATA),
  };
  const fuse = new Fuse(mnt, ops, { timeout: false, force: true, mkdir: false });
  // the binding knows no option for zero timeouts (it drops falsy values): set them here
  fuse._fuseOptions = () =>
    "-oentry_timeout=0,attr_timeout=0,negative_timeout=0,big_writes,max_write=131072,max_read=131072,allow_other";
  await new Promise((resolve, reject) =>
    fuse.mount((/** @type {Error | null} */ e) => (e ? reject(e) : resolve(undefined))),
  );
  process.stdout.write("ready\n");
  const keepAlive = setInterval(() => {}, 1 << 30);
  process.on("SIGTERM", () => {
    clearInterval(keepAlive);
    fuse.unmount(() => process.exit(0));
  });
}

async function measure(/** @type {number} */ requests) {
  const root = mkdtempSync("/var/tmp/unionfs-floor-");
  const mnt = join(root, "mnt");
  mkdirSync(mnt);
  const child = spawn(process.execPath, [SELF, "serve", mnt], { stdio: ["ignore", "pipe", "inherit"] });
  const pid = /** @type {number} */ (child.pid);
  const exited = new Promise((resolve) => child.on("exit", resolve));
  try {
    if (!(await waitFor(() => isMounted(mnt), 15_000))) throw new Error("the null filesystem did not mount");
    const connection = kernelDev(statSync(mnt).dev);
    const f = join(mnt, "f");
    const python = "import os, sys\nfor _ in range(int(sys.argv[2])): os.stat(sys.argv[1])";
    const workloads = [
      {
        name: "stat (LOOKUP + GETATTR)",
        argv: ["/usr/bin/python3", "-S", "-E", "-c", python, f, String(requests / 2)],
      },
      {
        name: "write 4 KiB (WRITE + GETXATTR)",
        argv: ["dd", "if=/dev/zero", `of=${f}`, "bs=4k", `count=${requests / 2}`, "conv=notrunc", "status=none"],
      },
      {
        name: "read 128 KiB (READ)",
        argv: ["dd", `if=${f}`, "of=/dev/null", "bs=128k", `count=${requests}`, "iflag=direct", "status=none"],
      },
    ];
    const rows = [];
    for (const w of workloads) {
      const cpu0 = processCpuSeconds(pid) ?? 0;
      const counter = await startRequestCounter(connection);
      const res = await runCommand({ argv: w.argv });
      const counts = await counter.stop();
      const cpu = (processCpuSeconds(pid) ?? 0) - cpu0;
      if (res.code !== 0) throw new Error(`${w.name}: ${res.stderr}`);
      rows.push({ ...w, seconds: res.seconds, cpu, counts });
    }
    return rows;
  } finally {
    child.kill("SIGTERM");
    if (!(await waitFor(() => !isAlive(pid), 10_000))) child.kill("SIGKILL");
    await exited;
    if (isMounted(mnt)) await runCommand({ argv: ["umount", "-l", mnt] });
    await mustRun(["rm", "-rf", "--one-file-system", "--", root]);
  }
}

if (process.argv[2] === "serve") {
  await serve(/** @type {string} */ (process.argv[3]));
} else {
  const i = process.argv.indexOf("--requests");
  const requests = i > 0 ? Number(process.argv[i + 1]) : 40_000;
  const rows = await measure(requests);
  const lines = [
    "| workload (null filesystem on fuse-native) | requests | wall µs / request | daemon CPU µs / request | requests by type |",
    "|---|---:|---:|---:|---|",
  ];
  for (const r of rows) {
    const ops = Object.entries(r.counts.byOp)
      .map(([op, n]) => `${op} ${n}`)
      .join(", ");
    const t = r.counts.total;
    lines.push(
      `| ${r.name} | ${t} | ${((r.seconds * 1e6) / t).toFixed(1)} | ${((r.cpu * 1e6) / t).toFixed(1)} | ${ops} |`,
    );
  }
  process.stdout.write(`${lines.join("\n")}\n`);
}
