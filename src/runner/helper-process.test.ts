import { existsSync, mkdtempSync, readFileSync, readlinkSync, rmSync } from "node:fs";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { afterEach, beforeEach, describe, expect, it } from "vitest";
import { UserError } from "../errors.js";
import { loadSpawnSession } from "../sys/spawn.js";
import { startCommand } from "../testing/cli-run.js";
import { waitUntil } from "../testing/processes.js";
import { type HelperSpawner, runHelperProcess } from "./helper-process.js";
import { WAITER } from "./run.js";

const ADDON_BUILT = loadSpawnSession() !== null;

// The same table against both ways of starting the helper: they must not differ in anything
// the helper (and, through its exec, the command) can see.
describe.each([
  ["posix_spawn", !ADDON_BUILT],
  ["child_process", false],
] as const)("runHelperProcess via %s", (spawner: HelperSpawner, skip) => {
  let dir = "";
  beforeEach(() => {
    dir = mkdtempSync(join(tmpdir(), "unionfs-helper-process-"));
  });
  afterEach(() => rmSync(dir, { recursive: true, force: true }));

  const sh = (script: string, started: (pid: number) => void = () => {}) =>
    runHelperProcess("/bin/sh", ["-c", script], started, spawner);

  it.skipIf(skip)("reports the exit code and the pid it started", async () => {
    let pid = 0;
    const exit = await sh("echo $$ > $0; exit 3".replace("$0", join(dir, "pid")), (p) => {
      pid = p;
    });
    expect(exit).toEqual({ code: 3, signal: null });
    expect(readFileSync(join(dir, "pid"), "utf8").trim()).toBe(String(pid));
  });

  it.skipIf(skip)("reports a signal that ended it, and signals sent to its pid reach it", async () => {
    expect(await sh("kill -TERM $$")).toEqual({ code: null, signal: "SIGTERM" });
    const exit = await sh("exec sleep 30", (pid) => process.kill(pid, "SIGINT"));
    expect(exit).toEqual({ code: null, signal: "SIGINT" });
  });

  it.skipIf(skip)("starts it in a session of its own, signals unblocked and at their defaults", async () => {
    // read by cat and grep, the shell's children: the shell blocks signals while it waits for
    // them, and gives them the signal state it was started with
    const out = join(dir, "state");
    await sh(`{ echo $$; cat /proc/self/stat; grep -E '^Sig(Blk|Ign)' /proc/self/status; } > ${out}`);
    const [shell, stat, blocked, ignored] = readFileSync(out, "utf8").trim().split("\n");
    const session = (stat ?? "").slice((stat ?? "").lastIndexOf(")") + 2).split(" ")[3];
    expect(session).toBe(shell);
    expect(blocked).toMatch(/^SigBlk:\s+0+$/);
    expect(ignored).toMatch(/^SigIgn:\s+0+$/);
  });

  it.skipIf(skip)("passes our stdin, stdout, stderr and environment on", async () => {
    const out = join(dir, "io");
    process.env.UNIONFS_HELPER_PROCESS_TEST = "passed on";
    try {
      // read before any redirection: the shell redirects its own descriptors for a moment
      await sh(
        `fds=$(readlink /proc/$$/fd/0 /proc/$$/fd/1 /proc/$$/fd/2); echo "$fds\n$UNIONFS_HELPER_PROCESS_TEST" > ${out}`,
      );
    } finally {
      delete process.env.UNIONFS_HELPER_PROCESS_TEST;
    }
    const ours = [0, 1, 2].map((fd) => readlinkSync(`/proc/self/fd/${fd}`));
    expect(readFileSync(out, "utf8").trim().split("\n")).toEqual([...ours, "passed on"]);
  });

  it.skipIf(skip)("says which program could not be started", async () => {
    const missing = join(dir, "no-such-helper");
    const started = runHelperProcess(missing, [], () => {}, spawner);
    await expect(started).rejects.toThrow(UserError);
    await expect(started).rejects.toThrow(`run: cannot start ${missing}: ENOENT`);
  });
});

describe.skipIf(!ADDON_BUILT)("posix_spawn next to child_process", () => {
  it("each reaps only its own children (a --driver fuse run uses both)", async () => {
    const [viaAddon, viaNode] = await Promise.all([
      runHelperProcess("/bin/sh", ["-c", "sleep 0.3; exit 4"], () => {}, "posix_spawn"),
      runHelperProcess("/bin/sh", ["-c", "exit 2"], () => {}, "child_process"),
    ]);
    expect(viaAddon).toEqual({ code: 4, signal: null });
    expect(viaNode).toEqual({ code: 2, signal: null });
  });
});

describe.skipIf(!ADDON_BUILT)("handOverHelper", () => {
  const module = join(import.meta.dirname, "../../dist/runner/helper-process.js");
  /** A Node process that runs `code` after importing handOverHelper from the built module. */
  const node = (code: string) =>
    startCommand(process.execPath, [
      "--input-type=module",
      "-e",
      `const { handOverHelper } = await import(${JSON.stringify(module)}); ${code}`,
    ]);
  const handOver = (script: string, waiter = WAITER) =>
    node(
      `(await import("node:fs")).writeSync(1, "node=" + process.pid + "\\n");` +
        `await handOverHelper("/bin/sh", ["-c", ${JSON.stringify(script)}], ${JSON.stringify(waiter)}, () => {});`,
    );

  it.skipIf(!existsSync(WAITER))(
    "becomes the waiter of the program it started, and exits with the program's status",
    async () => {
      // the exec may still be under way when the program starts: wait for the parent to change
      const script = `echo parent=$PPID; for i in $(seq 100); do e=$(readlink /proc/$PPID/exe); [ "$e" != ${JSON.stringify(process.execPath)} ] && break; sleep 0.02; done; echo $e; exit 7`;
      const r = await handOver(script).result;
      const [node, parent, parentExe] = r.stdout.trim().split("\n");
      // the program's parent is the Node process, now the waiter: Node exec'd, it did not fork
      expect(parent).toBe(node?.replace("node=", "parent="));
      expect(parentExe).toBe(WAITER);
      expect([r.code, r.stderr]).toEqual([7, ""]);
    },
  );

  it.skipIf(!existsSync(WAITER))(
    "starts the program with no signal blocked, though Node blocks them all to exec",
    async () => {
      // cat leaves its signal state alone (a shell blocks signals around each fork)
      const r = await node(
        `await handOverHelper("/bin/cat", ["/proc/self/status"], ${JSON.stringify(WAITER)}, () => {});`,
      ).result;
      expect(r.code).toBe(0);
      expect(r.stdout).toMatch(/^SigBlk:\s+0+$/m);
      expect(r.stdout).toMatch(/^SigIgn:\s+0+$/m);
    },
  );

  it.skipIf(!existsSync(WAITER))("passes signals on to the program", async () => {
    const script = "trap 'echo got TERM; exit 5' TERM; echo sh=$$; while :; do sleep 0.1; done";
    const run = handOver(script);
    let out = "";
    run.child.stdout?.on("data", (c: Buffer) => {
      out += c.toString("utf8");
    });
    const exe = () => {
      try {
        return readlinkSync(`/proc/${run.child.pid}/exe`);
      } catch {
        return "";
      }
    };
    try {
      // the program may start before Node's exec of the waiter is done: a signal before it
      // would reach Node, not the waiter
      expect(await waitUntil(() => out.includes("sh=") && exe() === WAITER, 10_000)).toBe(true);
      run.child.kill("SIGTERM");
      const r = await run.result;
      expect(r.stdout).toMatch(/got TERM\n$/);
      expect(r.code).toBe(5);
    } finally {
      // a failure above must not leave the loop running
      const sh = /sh=(\d+)/.exec(out)?.[1];
      if (sh !== undefined) {
        try {
          process.kill(Number(sh), "SIGKILL");
        } catch {
          // gone already
        }
      }
    }
  });

  it("waits for the program itself when there is no waiter to become", async () => {
    const r = await node(
      `const exit = await handOverHelper("/bin/sh", ["-c", "exit 4"], "/no/such/waiter", () => {}); console.log(JSON.stringify(exit));`,
    ).result;
    expect([r.code, r.stdout]).toEqual([0, '{"code":4,"signal":null}\n']);
  });

  it("says which program could not be started", async () => {
    const r = await node(
      `try { await handOverHelper("/no/such/helper", [], "/no/such/waiter", () => {}); } catch (e) { console.log(e.message); }`,
    ).result;
    expect([r.code, r.stdout]).toEqual([0, "run: cannot start /no/such/helper: ENOENT\n"]);
  });
});
