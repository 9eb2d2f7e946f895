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
  reply(
    {
      log: (m) => logged.push(m),
      stage: async (node) => {
        staged.push(node.path);
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
  return { calls, logged, staged };
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

  it("gives up with EIO on a copy-up that keeps asking for its data", async () => {
    const { calls, staged } = await replies(
      () => {
        throw new DataCopyNeeded(fakeNode("a/f"));
      },
      () => [0],
    );
    expect(staged.length).toBe(4);
    expect(calls).toEqual([[-5]]);
  });
});
