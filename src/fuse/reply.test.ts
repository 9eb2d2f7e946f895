import { describe, expect, it } from "vitest";
import { FsError } from "../errors.js";
import { reply } from "./reply.js";

/** Runs reply() and resolves with every call the binding's callback got, once all have settled. */
async function replies(work: () => Promise<unknown>, ok: (v: unknown) => unknown[], throwInCallback = false) {
  const calls: unknown[][] = [];
  const logged: string[] = [];
  reply(
    { log: (m) => logged.push(m) },
    (...args) => {
      calls.push(args);
      if (throwInCallback) throw new Error("callback blew up");
    },
    work,
    ok,
  );
  await new Promise((r) => setTimeout(r, 0));
  return { calls, logged };
}

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
});
