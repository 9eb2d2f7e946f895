/**
 * `unionfs mount` on read-only stacks (issue 3, item 6): layer order and escaping, EROFS,
 * a daemon that is live when the command returns, foreground mode and its signals, and the
 * fuse-overlayfs and `mount -t fuse.unionfs` forms. The daemon always runs in a child process.
 * What depends on where the layers are (order, escaping, EROFS, the fuse-overlayfs form) runs in
 * each filesystem layout (src/testing/fs-layout.ts); the daemon's life cycle does not. All of it
 * runs once per transport (src/testing/transports.ts).
 */
import { type ChildProcess, execFileSync, spawn } from "node:child_process";
import { existsSync, readdirSync, readFileSync, writeFileSync } from "node:fs";
import { join } from "node:path";
import { afterEach, beforeEach, expect, it } from "vitest";
import { isAlive } from "../sys/process-watch.js";
import { CLI_MAIN, mountAt, runCli, runCommand, startCli } from "../testing/cli-run.js";
import { type FsLayout, LayoutDirs, selectedLayouts } from "../testing/fs-layout.js";
import { waitUntil } from "../testing/processes.js";
import { describeAsRoot } from "../testing/root-gate.js";
import { Scratch } from "../testing/scratch.js";
import { selectedTransports, transportArgs } from "../testing/transports.js";

interface Stack {
  top: string;
  bottom: string;
  mnt: string;
}

/**
 * Two lowers with a name in both (`a`) and one only in the bottom (`b`), on the filesystems
 * `layout` gives lowers 0 and `bottomIndex` of a read-only stack.
 */
function twoLowers(t: Scratch, layout?: LayoutDirs, bottomIndex = 1): Stack {
  const top = layout?.readOnlyLower("top", 0) ?? t.mkdir("top");
  const bottom = layout?.readOnlyLower("bottom", bottomIndex) ?? t.mkdir("bottom");
  writeFileSync(join(top, "a"), "from top\n");
  writeFileSync(join(bottom, "a"), "from bottom\n");
  writeFileSync(join(bottom, "b"), "only in bottom\n");
  return { top, bottom, mnt: t.mkdir("mnt") };
}

const owners: ChildProcess[] = [];

/** A process to own a mount (`sleep 60`), killed by the test, or by the cleanup if the test fails first. */
function startOwner(): ChildProcess {
  const child = spawn("sleep", ["60"], { stdio: "ignore" });
  owners.push(child);
  return child;
}

function listing(dir: string): string[] {
  return readdirSync(dir).sort();
}

for (const transport of selectedTransports()) {
  describeAsRoot(`unionfs mount over its own lower root, ${transport}`, () => {
    ownLowerTests(transport);
  });
}

function ownLowerTests(transport: string): void {
  let t: Scratch;
  beforeEach(() => {
    t = new Scratch("unionfs-cli-", true);
  });
  afterEach(() => t.cleanup());

  // overlaying a directory onto itself (/usr onto /usr), as overlayfs and fuse-overlayfs allow:
  // the daemon reaches the lower through the fd it opened before mounting, not through itself
  it("serves the lower's content and writes to the upper", async () => {
    const lower = t.mkdir("l");
    const upper = t.mkdir("u");
    writeFileSync(join(lower, "a"), "lower a\n");
    const result = await runCli(["mount", ...transportArgs(transport), lower, upper, lower], { env: t.env });
    expect(result).toMatchObject({ code: 0, stderr: "" });
    expect(mountAt(lower)?.fstype).toBe("fuse.unionfs");
    expect(listing(lower)).toEqual(["a"]);
    expect(readFileSync(join(lower, "a"), "utf8")).toBe("lower a\n");
    writeFileSync(join(lower, "a"), "changed\n");
    writeFileSync(join(lower, "new"), "new\n");
    expect(listing(lower)).toEqual(["a", "new"]);
    expect(await runCli(["umount", lower], { env: t.env })).toMatchObject({ code: 0, stderr: "" });
    expect(listing(lower)).toEqual(["a"]);
    expect(readFileSync(join(lower, "a"), "utf8")).toBe("lower a\n");
    expect(readFileSync(join(upper, "a"), "utf8")).toBe("changed\n");
    expect(listing(upper)).toEqual(["a", "new"]);
  });
}

for (const transport of selectedTransports()) {
  describeAsRoot(`unionfs mount (read-only), ${transport}`, () => {
    lifeCycleTests(transport);
  });
}

function lifeCycleTests(transport: string): void {
  let t: Scratch;
  beforeEach(() => {
    t = new Scratch("unionfs-cli-", true);
  });
  afterEach(async () => {
    for (const owner of owners.splice(0)) owner.kill("SIGKILL");
    await t.cleanup();
  });

  async function mount(args: string[]): Promise<void> {
    const result = await runCli(args, { env: t.env });
    expect(result).toMatchObject({ code: 0, stderr: "", stdout: "" });
  }

  it("returns only once the mount is live, with the daemon detached from its output", async () => {
    const { top, bottom, mnt } = twoLowers(t);
    // runCli waits for stdout/stderr to close too: a daemon holding them would hang it
    await mount(["mount", ...transportArgs(transport), `${top}:${bottom}`, mnt]);
    // no polling: the mount must be there the moment the command has exited
    expect(mountAt(mnt)?.fstype).toBe("fuse.unionfs");
    expect(listing(mnt)).toEqual(["a", "b"]);
    const pid = t.daemonPid(mnt);
    expect(pid).not.toBeNull();
    expect(isAlive(pid as number)).toBe(true);
  });

  it("--exit-with PID unmounts and ends the daemon once that process has exited", async () => {
    const { top, bottom, mnt } = twoLowers(t);
    const owner = startOwner();
    await mount(["mount", ...transportArgs(transport), "--exit-with", String(owner.pid), `${top}:${bottom}`, mnt]);
    const pid = t.daemonPid(mnt) as number;
    expect(pid).not.toBeNull();
    // the owner still runs: the mount stays
    await new Promise((r) => setTimeout(r, 600));
    expect(listing(mnt)).toEqual(["a", "b"]);
    owner.kill("SIGKILL");
    expect(await waitUntil(() => mountAt(mnt) === null && !isAlive(pid), 5_000)).toBe(true);
  });

  it("refuses an --exit-with that is not a process id, or no live one, with one line", async () => {
    const { top, bottom, mnt } = twoLowers(t);
    const bad = await runCli(["mount", ...transportArgs(transport), "--exit-with", "12ab", `${top}:${bottom}`, mnt], {
      env: t.env,
    });
    expect(bad.code).not.toBe(0);
    expect(bad.stderrLines).toEqual(["unionfs: --exit-with needs a process id, not '12ab'"]);
    const owner = startOwner();
    owner.kill("SIGKILL");
    await new Promise((r) => owner.once("exit", r));
    const gone = await runCli(
      ["mount", ...transportArgs(transport), "--exit-with", String(owner.pid), `${top}:${bottom}`, mnt],
      { env: t.env },
    );
    expect(gone.code).not.toBe(0);
    expect(gone.stderrLines).toEqual([`unionfs: --exit-with ${owner.pid}: no such process`]);
    expect(mountAt(mnt)).toBeNull();
  });

  it("does not keep the caller's working directory busy", async () => {
    const { top, bottom, mnt } = twoLowers(t);
    const cwd = t.mkdir("cwd");
    execFileSync("mount", ["-t", "tmpfs", "-o", "size=1m", "cwd-test", cwd]);
    const result = await runCli(["mount", ...transportArgs(transport), `${top}:${bottom}`, mnt], { env: t.env, cwd });
    expect(result.code).toBe(0);
    // a daemon that kept its cwd would make this EBUSY
    execFileSync("umount", [cwd]);
  });

  it.each(["SIGTERM", "SIGINT"] as const)("-f stays in the foreground and unmounts on %s", async (signal) => {
    const { top, bottom, mnt } = twoLowers(t);
    const running = startCli(["mount", ...transportArgs(transport), "-f", `${top}:${bottom}`, mnt], { env: t.env });
    expect(await waitUntil(() => mountAt(mnt) !== null)).toBe(true);
    expect(readFileSync(join(mnt, "a"), "utf8")).toBe("from top\n");
    running.child.kill(signal);
    const result = await running.result;
    expect(result).toMatchObject({ code: 0, signal: null, stderr: "" });
    expect(mountAt(mnt)).toBeNull();
    expect(t.daemonPid(mnt)).toBeNull();
  });

  it("works as the program behind mount -t fuse.unionfs", async () => {
    // mount(8) runs /sbin/mount.fuse with PATH removed from the environment, and mount.fuse runs
    // `unionfs SOURCE MOUNTPOINT -o OPTIONS` through /bin/sh, whose default PATH starts with
    // /usr/local/sbin. So the helper cannot come from our PATH: in a private mount namespace a
    // dir holding a `unionfs` wrapper is bound over /usr/local/sbin, and everything that must
    // see the mount runs in that namespace.
    if (!existsSync("/usr/local/sbin") || !existsSync("/sbin/mount.fuse")) {
      throw new Error("needs /usr/local/sbin and /sbin/mount.fuse (apt-get install fuse3)");
    }
    const { top, bottom, mnt } = twoLowers(t);
    const bin = t.mkdir("bin");
    writeFileSync(
      join(bin, "unionfs"),
      `#!/bin/sh\nexec '${process.execPath}' '${CLI_MAIN}' --transport ${transport} "$@"\n`,
      { mode: 0o755 },
    );
    const script = [
      "set -e",
      'mount -t fuse.unionfs -o "lowerdir=$1:$2,frobnicate" unionfs "$3"',
      `awk -v m="$3" '$5 == m { print $(NF-2) }' /proc/self/mountinfo`,
      'cat "$3/a"',
      '"$4" "$5" umount "$3"',
      "echo unmounted",
    ].join("\n");
    const result = await runCommand("/bin/sh", ["-c", script, "sh", top, bottom, mnt, process.execPath, CLI_MAIN], {
      env: t.env,
      namespaceSetup: [`mount --bind ${bin} /usr/local/sbin`],
    });
    expect(result.stderrLines).toEqual(["unionfs: warning: unknown option frobnicate ignored"]);
    expect(result).toMatchObject({ code: 0, stdout: "fuse.unionfs\nfrom top\nunmounted\n" });
  });
}

for (const transport of selectedTransports()) {
  for (const layout of selectedLayouts()) {
    describeAsRoot(`unionfs mount (read-only), ${transport}, ${layout.name}: the layers`, () => {
      layerTests(transport, layout);
    });
  }
}

function layerTests(transport: string, layout: FsLayout): void {
  let t: Scratch;
  let dirs: LayoutDirs;
  beforeEach(() => {
    t = new Scratch("unionfs-cli-", true);
    dirs = new LayoutDirs(t, layout);
  });
  afterEach(async () => {
    await t.cleanup();
  });

  async function mount(args: string[]): Promise<void> {
    const result = await runCli(args, { env: t.env });
    expect(result).toMatchObject({ code: 0, stderr: "", stdout: "" });
  }

  it("puts the leftmost lower on top", async () => {
    const { top, bottom, mnt } = twoLowers(t, dirs, 2);
    const middle = dirs.readOnlyLower("middle", 1);
    writeFileSync(join(middle, "a"), "from middle\n");
    writeFileSync(join(middle, "m"), "only in middle\n");
    await mount(["mount", ...transportArgs(transport), `${top}:${middle}:${bottom}`, mnt]);
    expect(listing(mnt)).toEqual(["a", "b", "m"]);
    expect(readFileSync(join(mnt, "a"), "utf8")).toBe("from top\n");
    expect(readFileSync(join(mnt, "m"), "utf8")).toBe("only in middle\n");
  });

  it("takes \\: as a colon inside a layer path", async () => {
    const { bottom, mnt } = twoLowers(t, dirs);
    const colon = dirs.readOnlyLower("with:colon", 0);
    writeFileSync(join(colon, "a"), "from with:colon\n");
    await mount(["mount", ...transportArgs(transport), `${colon.replaceAll(":", "\\:")}:${bottom}`, mnt]);
    expect(listing(mnt)).toEqual(["a", "b"]);
    expect(readFileSync(join(mnt, "a"), "utf8")).toBe("from with:colon\n");
  });

  it("refuses writes with EROFS", async () => {
    const { top, bottom, mnt } = twoLowers(t, dirs);
    await mount(["mount", ...transportArgs(transport), `${top}:${bottom}`, mnt]);
    const touch = await runCommand("touch", [join(mnt, "new")]);
    expect(touch.code).not.toBe(0);
    expect(touch.stderr).toContain("Read-only file system");
    const append = await runCommand("sh", ["-c", `echo more >> ${join(mnt, "a")}`]);
    expect(append.stderr).toContain("Read-only file system");
    expect(readFileSync(join(top, "a"), "utf8")).toBe("from top\n");
    expect(existsSync(join(top, "new"))).toBe(false);
  });

  it("accepts the fuse-overlayfs form, warning once about an unknown option", async () => {
    const { top, bottom, mnt } = twoLowers(t, dirs);
    const result = await runCli(
      [...transportArgs(transport), "-o", `lowerdir=${top}:${bottom},noatime,frobnicate=1`, "unionfs", mnt],
      { env: t.env },
    );
    expect(result.code).toBe(0);
    expect(result.stderrLines).toEqual(["unionfs: warning: unknown option frobnicate=1 ignored"]);
    expect(mountAt(mnt)?.fstype).toBe("fuse.unionfs");
    expect(readFileSync(join(mnt, "a"), "utf8")).toBe("from top\n");
  });
}
