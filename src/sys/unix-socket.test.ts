import { spawnSync } from "node:child_process";
import { closeSync, mkdtempSync, readdirSync, readFileSync, readlinkSync, rmSync, writeFileSync } from "node:fs";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { afterEach, beforeEach, describe, expect, it } from "vitest";
import { receiveFd, socketPair } from "./unix-socket.js";

let dir: string;
beforeEach(() => {
  dir = mkdtempSync(join(tmpdir(), "unionfs-unix-socket-"));
});
afterEach(() => {
  rmSync(dir, { recursive: true, force: true });
});

/**
 * Runs a sender on the other end as fusermount3 would be run: a child with that end as its fd 3
 * and a program that sends one byte with the fds of `paths` attached (SCM_RIGHTS).
 */
function sendFrom(child: number, paths: readonly string[]): void {
  const script = [
    "import os, socket, sys",
    "s = socket.socket(fileno=3)",
    "socket.send_fds(s, [b'x'], [os.open(p, os.O_RDONLY) for p in sys.argv[1:]])",
  ].join("\n");
  const r = spawnSync("python3", ["-c", script, ...paths], { stdio: ["ignore", "ignore", "pipe", child] });
  if (r.status !== 0) throw new Error(`sender failed: ${r.stderr.toString()}`);
}

/** This process's fds open on `path`. */
function openFdsOn(path: string): string[] {
  return readdirSync("/proc/self/fd").filter((fd) => {
    try {
      return readlinkSync(`/proc/self/fd/${fd}`) === path;
    } catch {
      return false; // closed while we looked
    }
  });
}

describe("socketPair and receiveFd", () => {
  it("receives an open file sent by another process, close-on-exec", () => {
    const path = join(dir, "f");
    writeFileSync(path, "sent");
    const [ours, theirs] = socketPair();
    try {
      sendFrom(theirs, [path]);
      const fd = receiveFd(ours);
      expect(fd).not.toBeNull();
      try {
        expect(readFileSync(fd as number, "utf8")).toBe("sent");
        const flags = readFileSync(`/proc/self/fdinfo/${fd}`, "utf8").match(/^flags:\s*(\d+)$/m)?.[1];
        expect(Number.parseInt(flags ?? "0", 8) & 0o2000000).not.toBe(0);
      } finally {
        closeSync(fd as number);
      }
    } finally {
      closeSync(ours);
      closeSync(theirs);
    }
  });

  it("keeps the first of several fds and closes the rest", () => {
    const [a, b] = [join(dir, "a"), join(dir, "b")];
    writeFileSync(a, "first");
    writeFileSync(b, "second");
    const [ours, theirs] = socketPair();
    try {
      sendFrom(theirs, [a, b]);
      const fd = receiveFd(ours) as number;
      expect(readFileSync(fd, "utf8")).toBe("first");
      expect(openFdsOn(b)).toEqual([]);
      closeSync(fd);
    } finally {
      closeSync(ours);
      closeSync(theirs);
    }
  });

  it("returns null when the peer closes without sending an fd", () => {
    const [ours, theirs] = socketPair();
    closeSync(theirs);
    try {
      expect(receiveFd(ours)).toBeNull();
    } finally {
      closeSync(ours);
    }
  });
});
