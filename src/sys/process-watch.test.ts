import { spawn } from "node:child_process";
import { afterEach, describe, expect, it } from "vitest";
import { isAlive, watchProcess } from "./process-watch.js";

describe("process-watch", () => {
  const stops: Array<() => void> = [];
  afterEach(() => {
    for (const stop of stops.splice(0)) stop();
  });

  function watch(pid: number): { gone: () => boolean } {
    let gone = false;
    stops.push(watchProcess(pid, () => (gone = true), 20));
    return { gone: () => gone };
  }

  const later = (ms: number) => new Promise((r) => setTimeout(r, ms));

  it("tells once a process has exited, and not before", async () => {
    const child = spawn("sleep", ["30"], { stdio: "ignore" });
    const pid = child.pid as number;
    const w = watch(pid);
    await later(100);
    expect([isAlive(pid), w.gone()]).toEqual([true, false]);
    child.kill("SIGKILL");
    await new Promise((r) => child.once("exit", r));
    await later(100);
    expect([isAlive(pid), w.gone()]).toEqual([false, true]);
  });

  it("counts an exited but unreaped process (a zombie) as gone", async () => {
    // sh execs into sleep's parent role: its child exits at once and is never waited for
    const parent = spawn("sh", ["-c", "sleep 0 & exec sleep 30"], { stdio: "ignore" });
    await later(300);
    const zombie = Number(
      (await import("node:fs")).readFileSync(`/proc/${parent.pid}/task/${parent.pid}/children`, "utf8").trim(),
    );
    expect(zombie).toBeGreaterThan(0);
    expect(isAlive(zombie)).toBe(false);
    expect(isAlive(parent.pid as number)).toBe(true);
    parent.kill("SIGKILL");
  });

  it("reports a pid with no process at once", async () => {
    const child = spawn("true", [], { stdio: "ignore" });
    await new Promise((r) => child.once("exit", r));
    const w = watch(child.pid as number);
    await later(0);
    expect(w.gone()).toBe(true);
  });
});
