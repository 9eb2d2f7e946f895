/**
 * --transport devfuse as an unprivileged user (issue 16): the daemon gets its /dev/fuse fd from
 * the setuid fusermount3 (the _FUSE_COMMFD socket, SCM_RIGHTS), as fuse-overlayfs does under
 * rootless podman, and unmounts through it. Everything runs as nobody in a world where nobody
 * may open /dev/fuse (user-fuse.ts); the layers are root's lower and nobody's upper.
 */
import { chownSync, readFileSync, statSync, writeFileSync } from "node:fs";
import { join } from "node:path";
import { fileURLToPath } from "node:url";
import { afterEach, beforeEach, expect, it } from "vitest";
import { isAlive } from "../sys/process-watch.js";
import { runCli, runCommand } from "../testing/cli-run.js";
import { processesUsing } from "../testing/processes.js";
import { describeAsRoot } from "../testing/root-gate.js";
import { Scratch } from "../testing/scratch.js";
import { selectedTransports } from "../testing/transports.js";
import { NOBODY, openUserFuse, type UserFuse } from "../testing/user-fuse.js";

const TRANSPORT_JS = fileURLToPath(new URL("../../dist/devfuse/transport.js", import.meta.url));

if (selectedTransports().includes("devfuse")) {
  describeAsRoot("devfuse as an unprivileged user, through fusermount3", () => {
    userMountTests();
  });
}

function userMountTests(): void {
  let t: Scratch;
  beforeEach(() => {
    t = new Scratch("unionfs-devfuse-user-");
  });
  afterEach(async () => {
    await t.cleanup();
  });

  /** root's lower (a, d/x), and an upper, work dir and mount point that are nobody's */
  function layers(): { lower: string; upper: string; work: string; mnt: string } {
    const lower = t.mkdir("lower");
    writeFileSync(join(lower, "a"), "from lower\n");
    t.mkdir("lower/d");
    writeFileSync(join(lower, "d/x"), "x\n");
    const [upper, work, mnt] = ["upper", "work", "mnt"].map((d) => t.mkdir(d)) as [string, string, string];
    for (const d of [upper, work, mnt]) chownSync(d, NOBODY.uid, NOBODY.gid);
    return { lower, upper, work, mnt };
  }

  function mountArgs(l: ReturnType<typeof layers>, extra: readonly string[] = []): string[] {
    return ["mount", "--transport", "devfuse", ...extra, "-w", l.work, l.lower, l.upper, l.mnt];
  }

  /** `script` run by sh as nobody in the world */
  function sh(world: UserFuse, script: string) {
    return runCommand("/bin/sh", ["-c", script], world.options());
  }

  it("mounts, writes into the upper as the user, and umount returns with the daemon gone", async () => {
    const world = await openUserFuse(t);
    const l = layers();
    expect(await runCli(mountArgs(l), world.options())).toMatchObject({ code: 0, stderr: "", stdout: "" });
    const entry = world.mountAt(l.mnt);
    expect(entry).toMatchObject({ fstype: "fuse.unionfs", source: "unionfs" });
    expect(entry?.superOptions).toEqual(expect.arrayContaining(["user_id=65534", "group_id=65534"]));
    const pid = t.daemonPid(l.mnt) as number;
    expect(pid).not.toBeNull();

    const wrote = await sh(world, `echo new > ${l.mnt}/b && ls ${l.mnt} && cat ${l.mnt}/a ${l.mnt}/d/x`);
    expect(wrote).toMatchObject({ code: 0, stderr: "", stdout: "a\nb\nd\nfrom lower\nx\n" });
    expect(readFileSync(join(l.upper, "b"), "utf8")).toBe("new\n");
    expect(statSync(join(l.upper, "b"))).toMatchObject({ uid: NOBODY.uid, gid: NOBODY.gid });

    expect(await runCli(["umount", l.mnt], world.options())).toMatchObject({ code: 0, stderr: "", stdout: "" });
    expect(isAlive(pid)).toBe(false);
    expect(world.mountAt(l.mnt)).toBeNull();
    expect(processesUsing(t.root).filter((p) => p !== world.pid)).toEqual([]);
  });

  it("refuses allow_other without user_allow_other in /etc/fuse.conf, in one line", async () => {
    const conf = t.path("fuse.conf");
    writeFileSync(conf, "");
    const world = await openUserFuse(t, [`if [ -e /etc/fuse.conf ]; then mount --bind ${conf} /etc/fuse.conf; fi`]);
    const l = layers();
    const result = await runCli(mountArgs(l, ["-o", "allow_other"]), world.options());
    expect(result.code).not.toBe(0);
    expect(result.stderrLines).toEqual([
      `unionfs: cannot mount on ${l.mnt}: fusermount3: option allow_other only allowed if 'user_allow_other' is set in /etc/fuse.conf`,
    ]);
    expect(world.mountAt(l.mnt)).toBeNull();
    expect(t.daemonPid(l.mnt)).toBeNull();
  });

  it("detaches the mount again when the start fails after fusermount3 mounted", async () => {
    // a stack with no layer: fusermount3 mounts and INIT is answered, then the worker's core
    // refuses to open, which is the failed start that must not leave a mount behind
    const world = await openUserFuse(t);
    const { mnt } = layers();
    const script = `
      import { readFileSync } from "node:fs";
      const [transportJs, mnt] = process.argv.slice(2);
      const mounted = () => readFileSync("/proc/self/mountinfo", "utf8").includes(" " + mnt + " ");
      const { devfuseTransport } = await import(transportJs);
      const spec = { stack: { upper: null, work: null, lowers: [] }, whiteout: null, volatile: false };
      const options = { readOnly: true, shared: false, debug: false, extra: [], log: (m) => console.error(m) };
      if (!mounted()) console.log("not mounted before");
      try {
        await devfuseTransport.mount(spec, mnt, options);
        console.log("mounted");
      } catch (e) {
        console.log("failed: " + e.message);
      }
      console.log(mounted() ? "still mounted" : "not mounted");
    `;
    // a file, not -e: a worker inherits the node flags (--input-type) and refuses to start
    const file = t.path("start.mjs");
    writeFileSync(file, script);
    const result = await runCommand(process.execPath, [file, TRANSPORT_JS, mnt], world.options());
    expect(result).toMatchObject({
      code: 0,
      stdout: "not mounted before\nfailed: Error: a layer stack needs at least one layer\nnot mounted\n",
    });
  });
}
