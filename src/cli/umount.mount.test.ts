/**
 * `unionfs umount` (issue 3, item 6): it returns only when the daemon is gone, so the layers can
 * be mounted again at once.
 */
import { chownSync, readdirSync, readFileSync, writeFileSync } from "node:fs";
import { join } from "node:path";
import { afterEach, beforeEach, expect, it } from "vitest";
import { isAlive } from "../sys/process-watch.js";
import { CLI_MAIN, mountAt, runCli, runCommand } from "../testing/cli-run.js";
import { killHard } from "../testing/daemon-crash.js";
import { describeAsRoot } from "../testing/root-gate.js";
import { Scratch } from "../testing/scratch.js";
import { selectedTransports, transportArgs } from "../testing/transports.js";
import { NOBODY, openUserFuse } from "../testing/user-fuse.js";

for (const transport of selectedTransports()) {
  describeAsRoot(`unionfs umount, ${transport}`, () => {
    umountTests(transport);
  });
  describeAsRoot(`unionfs umount as an unprivileged user, ${transport}`, () => {
    userUmountTests(transport);
  });
}

function umountTests(transport: string): void {
  let t: Scratch;
  beforeEach(() => {
    t = new Scratch("unionfs-cli-", true);
  });
  afterEach(async () => {
    await t.cleanup();
  });

  function layers(): { lowers: string; mnt: string } {
    const top = t.mkdir("top");
    const bottom = t.mkdir("bottom");
    writeFileSync(join(top, "a"), "from top\n");
    writeFileSync(join(bottom, "b"), "from bottom\n");
    return { lowers: `${top}:${bottom}`, mnt: t.mkdir("mnt") };
  }

  it("returns with the daemon gone, and the same layers mount again at once", async () => {
    const { lowers, mnt } = layers();
    for (let round = 0; round < 2; round++) {
      expect(await runCli(["mount", ...transportArgs(transport), lowers, mnt], { env: t.env })).toMatchObject({
        code: 0,
        stderr: "",
      });
      expect(readFileSync(join(mnt, "a"), "utf8")).toBe("from top\n");
      const pid = t.daemonPid(mnt);
      expect(pid).not.toBeNull();
      expect(await runCli(["umount", mnt], { env: t.env })).toMatchObject({ code: 0, stderr: "", stdout: "" });
      expect(isAlive(pid as number)).toBe(false);
      expect(mountAt(mnt)).toBeNull();
      expect(t.daemonPid(mnt)).toBeNull();
    }
  });

  it("cleans up the dead mount of a daemon killed with SIGKILL", async () => {
    const { lowers, mnt } = layers();
    expect(await runCli(["mount", ...transportArgs(transport), lowers, mnt], { env: t.env })).toMatchObject({
      code: 0,
    });
    const pid = t.daemonPid(mnt) as number;
    expect(pid).not.toBeNull();
    await killHard(pid);
    // the kernel ends a request that met the abort with ECONNABORTED, every later one with ENOTCONN
    expect(() => readdirSync(mnt)).toThrow(/ENOTCONN|ECONNABORTED/);
    expect(await runCli(["umount", mnt], { env: t.env })).toMatchObject({ code: 0, stderr: "" });
    expect(mountAt(mnt)).toBeNull();
    expect(await runCli(["mount", ...transportArgs(transport), lowers, mnt], { env: t.env })).toMatchObject({
      code: 0,
    });
    expect(readFileSync(join(mnt, "a"), "utf8")).toBe("from top\n");
  });

  it("does not wait for init to reap the daemon", async () => {
    // In a PID namespace whose init is a Node process, orphans are never reaped: the daemon
    // stays a zombie after it exits, which must count as gone. Were it counted alive, umount
    // would wait out its limit and fail ("daemon ... did not exit"): the exit status and
    // stderr below say so without timing the run.
    const { lowers, mnt } = layers();
    const script = [
      "set -e",
      '"$1" "$2" mount --transport "$5" "$3" "$4"',
      '"$1" "$2" umount "$4"',
      "echo unmounted",
      `awk '$5 == "'"$4"'"' /proc/self/mountinfo`,
    ].join("\n");
    const init = `process.exitCode = require("node:child_process").spawnSync("/bin/sh", process.argv.slice(1), { stdio: "inherit" }).status`;
    const args = ["--pid", "--fork", "--mount-proc", process.execPath, "-e", init, "--"];
    args.push("-c", script, "sh", process.execPath, CLI_MAIN, lowers, mnt, transport);
    const result = await runCommand("unshare", args, { env: t.env });
    expect(result).toMatchObject({ code: 0, stderr: "", stdout: "unmounted\n" });
  });

  it("refuses a directory that is not mounted, in one line", async () => {
    const { mnt } = layers();
    const result = await runCli(["umount", mnt], { env: t.env });
    expect(result.code).not.toBe(0);
    expect(result.stderrLines).toEqual([`unionfs: ${mnt} is not mounted`]);
  });
}

/** The same through fusermount (fuse-native) or fusermount3 (devfuse), as nobody (user-fuse.ts). */
function userUmountTests(transport: string): void {
  let t: Scratch;
  beforeEach(() => {
    t = new Scratch("unionfs-cli-user-", true);
  });
  afterEach(async () => {
    await t.cleanup();
  });

  it("cleans up the dead mount of a daemon killed with SIGKILL", async () => {
    const world = await openUserFuse(t);
    const lower = t.mkdir("lower");
    writeFileSync(join(lower, "a"), "from lower\n");
    const [upper, work, mnt] = ["upper", "work", "mnt"].map((d) => t.mkdir(d)) as [string, string, string];
    for (const d of [upper, work, mnt]) chownSync(d, NOBODY.uid, NOBODY.gid);
    const mount = ["mount", ...transportArgs(transport), "-w", work, lower, upper, mnt];
    expect(await runCli(mount, world.options())).toMatchObject({ code: 0, stderr: "" });
    const pid = t.daemonPid(mnt) as number;
    expect(pid).not.toBeNull();
    await killHard(pid);
    const dead = await runCommand("/bin/ls", [mnt], world.options());
    expect(dead.stderr).toMatch(/Transport endpoint is not connected|Software caused connection abort/);
    expect(await runCli(["umount", mnt], world.options())).toMatchObject({ code: 0, stderr: "" });
    expect(world.mountAt(mnt)).toBeNull();
    expect(await runCli(mount, world.options())).toMatchObject({ code: 0, stderr: "" });
    expect(await runCommand("/bin/cat", [join(mnt, "a")], world.options())).toMatchObject({
      code: 0,
      stdout: "from lower\n",
    });
    expect(await runCli(["umount", mnt], world.options())).toMatchObject({ code: 0, stderr: "" });
    expect(world.mountAt(mnt)).toBeNull();
  });
}
