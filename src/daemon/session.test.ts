/**
 * startSession's failure paths, with a transport that never mounts: what it took (the layers'
 * fds, the upper's exclusive lock) is given back, so the same upper can be mounted again.
 */
import { readdirSync } from "node:fs";
import { describe, expect, it } from "vitest";
import { useScratch } from "../testing/scratch.js";
import { type SessionSpec, startSession } from "./session.js";
import type { Transport } from "./transport.js";

const openFds = () => readdirSync("/proc/self/fd").length;

function specFor(lower: string, upper: string, work: string, mountpoint: string): SessionSpec {
  return {
    stack: { lowers: [lower], upper, work },
    mountpoint,
    debug: false,
    extraOptions: [],
    whiteout: "file",
    volatile: false,
    log: () => {},
  };
}

const refusing: Transport = {
  mount: async () => {
    throw new Error("no mount today");
  },
};

describe("startSession", () => {
  const scratch = useScratch("unionfs-session-");

  it("gives back the layers' fds and locks when the stack cannot be prepared", async () => {
    const s = scratch();
    const upper = s.mkdir("upper");
    // a work dir inside the upper: UnionFs.prepare refuses it
    const spec = specFor(s.mkdir("lower"), upper, s.mkdir("upper/work"), s.mkdir("mnt"));
    const before = openFds();
    for (let i = 0; i < 2; i++) {
      await expect(startSession(spec, refusing)).rejects.toThrow(/must not contain each other/);
    }
    expect(openFds()).toBe(before);
  });

  it("gives back the upper's lock when the transport cannot mount", async () => {
    const s = scratch();
    const spec = specFor(s.mkdir("lower"), s.mkdir("upper"), s.mkdir("work"), s.mkdir("mnt"));
    for (let i = 0; i < 2; i++) {
      await expect(startSession(spec, refusing)).rejects.toThrow(/cannot mount on .*: no mount today/);
    }
  });
});
