import { describe, expect, it } from "vitest";
import { FsError } from "../errors.js";
import { DataCopyNeeded } from "../union/copy-up.js";
import type { UnionNode } from "../union/node-table.js";
import { reply } from "./reply.js";

/** Runs reply() and resolves with every call the binding's callback got, once all have settled. */
async function replies(work: () => unknown, ok: (v: unknown) => unknown[], throwInCallback = false) {
  const calls: unknown[][] = [];
  const logged: string[] = [];
  const staged: string[] = [];
  const released: string[] = [];
  reply(
    {
      log: (m) => logged.push(m),
      stage: async (node) => {
        staged.push(node.path);
        return () => released.push(node.path);
      },
    },
    (...args) => {
      calls.push(args);
      if (throwInCallback) throw new Error("callback blew up");
    },
    work,
    ok,
  );
  await new Promise((r) => setTimeout(r, 0));
  return { calls, logged, staged, released };
}

const fakeNode = (path: string) => ({ path }) as UnionNode;

describe("reply", () => {
  it("answers with the formatted result", async () => {
    const { calls } = await replies(
      async () => 7,
      (v) => [0, v],
    );
    expect(calls).toEqual([[0, 7]]);
  });

  it("answers an errno-shaped failure with its negative errno", async () => {
    const { calls } = await replies(
      async () => {
        throw new FsError("ENOENT", "lookup");
      },
      () => [0],
    );
    expect(calls).toEqual([[-2]]);
  });

  it("answers EIO, once, when the work throws before returning its promise", async () => {
    const { calls, logged } = await replies(
      () => {
        throw new TypeError("bug");
      },
      () => [0],
    );
    expect(calls).toEqual([[-5]]);
    expect(logged.join("\n")).toMatch(/TypeError: bug/);
  });

  it("answers EIO, once, when formatting the result throws", async () => {
    const { calls } = await replies(
      async () => 1,
      () => {
        throw new RangeError("bad stat");
      },
    );
    expect(calls).toEqual([[-5]]);
  });

  it("logs a throw in the binding's callback instead of leaving an unhandled rejection", async () => {
    const unhandled: unknown[] = [];
    const onUnhandled = (e: unknown) => unhandled.push(e);
    process.on("unhandledRejection", onUnhandled);
    try {
      const { calls, logged } = await replies(
        async () => 1,
        (v) => [0, v],
        true,
      );
      expect(calls).toEqual([[0, 1]]);
      expect(logged.join("\n")).toMatch(/callback blew up/);
      await new Promise((r) => setTimeout(r, 0));
      expect(unhandled).toEqual([]);
    } finally {
      process.off("unhandledRejection", onUnhandled);
    }
  });

  it("stages the data a copy-up needs, then runs the work again", async () => {
    let runs = 0;
    const { calls, staged } = await replies(
      () => {
        runs++;
        if (runs === 1) throw new DataCopyNeeded(fakeNode("a/f"));
        return 42;
      },
      (v) => [0, v],
    );
    expect(staged).toEqual(["a/f"]);
    expect(calls).toEqual([[0, 42]]);
  });

  it("releases what it staged once the work is done, whether it succeeded or not", async () => {
    let runs = 0;
    const done = await replies(
      () => {
        runs++;
        if (runs <= 2) throw new DataCopyNeeded(fakeNode(`a/f${runs}`));
        return 1;
      },
      (v) => [0, v],
    );
    expect([done.calls, done.released]).toEqual([[[0, 1]], ["a/f1", "a/f2"]]);
    let tries = 0;
    const failed = await replies(
      () => {
        tries++;
        if (tries === 1) throw new DataCopyNeeded(fakeNode("a/f"));
        throw new FsError("ENOSPC", "write");
      },
      () => [0],
    );
    expect([failed.calls, failed.released]).toEqual([[[-28]], ["a/f"]]);
  });

  it("gives up with EIO on a copy-up that keeps asking for its data", async () => {
    const { calls, staged, released } = await replies(
      () => {
        throw new DataCopyNeeded(fakeNode("a/f"));
      },
      () => [0],
    );
    expect(staged.length).toBe(4);
    expect(released.length).toBe(4);
    expect(calls).toEqual([[-5]]);
  });
});
