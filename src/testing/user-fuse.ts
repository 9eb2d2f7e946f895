/**
 * A world in which an unprivileged user can mount FUSE, for tests that mount as one: a private
 * mount namespace whose /dev/fuse everyone may open. fusermount3 (and libfuse2's fusermount)
 * opens /dev/fuse as its caller, and hosts and containers often keep it at 0600 root. Changing
 * the host's node would leak out of the test (other suites check its mode), so the namespace
 * gets a 0666 node of its own bound over /dev/fuse, made on a tmpfs only the namespace sees.
 *
 * A holder process keeps the namespace alive while the test runs commands in it (`options` for
 * runCli / runCommand: nsenter, then setpriv to the user) and reads its mount table. The holder
 * waits on a pipe from this process, so it also ends when the test process dies; the namespace,
 * with any mount a daemon made in it, goes once its last process has (the Scratch's cleanup
 * kills the daemons it recorded and anything else using its dir).
 */
import { spawn } from "node:child_process";
import { chownSync, readFileSync } from "node:fs";
import { type MountEntry, parseMountInfo } from "../sys/mountinfo.js";
import { findProgram, type RunOptions, shellQuote } from "./cli-run.js";
import type { Scratch } from "./scratch.js";

export const NOBODY = { uid: 65534, gid: 65534 } as const;

export interface UserFuse {
  /** the holder: its mount namespace is the world's */
  readonly pid: number;
  /** run options for a command as `user` in the world, daemon records in the Scratch */
  options(extra?: RunOptions): RunOptions;
  /** the world's mount at `path` (a resolved path), or null */
  mountAt(path: string): MountEntry | null;
}

/**
 * Opens the world for `user` (nobody unless told): its runtime dir is the Scratch's, made the
 * user's; `setup` are further shell commands run as root in the namespace (binds over files).
 */
export async function openUserFuse(
  t: Scratch,
  setup: readonly string[] = [],
  user: { uid: number; gid: number } = NOBODY,
): Promise<UserFuse> {
  const dev = t.mkdir("dev");
  t.mkdir(".run");
  chownSync(t.runtimeDir, user.uid, user.gid);
  const script = [
    "set -e",
    `mount -t tmpfs -o size=4k,mode=0700 unionfs-dev ${shellQuote(dev)}`,
    `mknod -m 666 ${shellQuote(dev)}/fuse c 10 229`,
    `mount --bind ${shellQuote(dev)}/fuse /dev/fuse`,
    ...setup,
    "echo ready",
    "exec cat >/dev/null",
  ].join("\n");
  const unshare = findProgram("unshare") ?? "unshare";
  const holder = spawn(unshare, ["--mount", "--propagation", "private", "/bin/sh", "-c", script], {
    stdio: ["pipe", "pipe", "pipe"],
  });
  t.onCleanup(async () => {
    if (holder.exitCode !== null || holder.signalCode !== null) return;
    const exited = new Promise((r) => holder.once("exit", r));
    holder.stdin.end();
    await exited;
  });
  await ready(holder);
  const pid = holder.pid as number;
  return {
    pid,
    options: (extra = {}) => ({ ...extra, user, mountNamespaceOf: pid, env: { ...t.env, ...extra.env } }),
    mountAt: (path) =>
      parseMountInfo(readFileSync(`/proc/${pid}/mountinfo`, "utf8")).findLast((e) => e.mountpoint === path) ?? null,
  };
}

/** Resolves once the holder has said "ready"; rejects with its stderr if it exited first. */
function ready(holder: ReturnType<typeof spawn>): Promise<void> {
  return new Promise((resolve, reject) => {
    let stderr = "";
    holder.stderr?.on("data", (chunk: Buffer) => {
      stderr += chunk.toString("utf8");
    });
    holder.stdout?.once("data", () => resolve());
    holder.once("error", reject);
    holder.once("exit", (code, signal) =>
      reject(new Error(`the user-fuse namespace did not come up (${signal ?? `exit ${code}`}): ${stderr.trim()}`)),
    );
  });
}
