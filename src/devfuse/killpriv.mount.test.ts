/**
 * Set-id bits and writes, checked against kernel overlayfs: a write, a truncate or an O_TRUNC
 * open by a user who may not keep them (no CAP_FSETID) clears a file's set-user-ID bit and its
 * set-group-ID bit (group-executable); root's writes keep them. Under killpriv v2 the kernel
 * leaves this to the daemon, which writes as root itself, and a write passed through to the
 * upper file is never seen by the daemon (passthrough.ts says how that is covered): each case
 * below is one way the write reaches the file.
 */
import { execFileSync } from "node:child_process";
import { chmodSync, closeSync, openSync, writeFileSync } from "node:fs";
import { join } from "node:path";
import { afterEach, beforeEach, expect, it } from "vitest";
import { mountUnionfs } from "../testing/mounts.js";
import { describeAsRoot } from "../testing/root-gate.js";
import { Scratch } from "../testing/scratch.js";
import { selectedTransports } from "../testing/transports.js";
import { mountKernel } from "../testing/write-sequence.js";

const NOBODY = { uid: 65534, gid: 65534 };
const SET_ID_RWX = 0o6777;
const FILES = ["appended", "created", "truncated", "reopened", "by-root", "held"];

for (const transport of selectedTransports().filter((t) => t !== "fuse-native")) {
  describeAsRoot(`set-id bits and writes, ${transport}: kernel overlayfs vs unionfs`, () => {
    let t: Scratch;
    let mounts: string[];
    beforeEach(async () => {
      t = new Scratch("unionfs-killpriv-");
      const lower = t.mkdir("lower");
      for (const name of FILES) {
        writeFileSync(join(lower, name), "data\n");
        chmodSync(join(lower, name), SET_ID_RWX);
      }
      const kernel = mountKernel(t, [lower], t.mkdir("ku"), t.mkdir("kw"), t.mkdir("km"));
      const ours = await mountUnionfs(
        t,
        { lowers: [lower], upper: t.mkdir("uu"), work: t.mkdir("uw") },
        t.mkdir("um"),
        {
          transport,
        },
      );
      mounts = [kernel.mountpoint, ours.mountpoint];
    });
    afterEach(async () => {
      await t.cleanup();
    });

    it("a write, truncate or O_TRUNC open by nobody clears them, root's write keeps them, as overlayfs does", () => {
      const [kernel, unionfs] = mounts.map((m) => {
        const asNobody = (script: string) => execFileSync("sh", ["-c", script, "sh", m], NOBODY);
        // a lower file, copied up by the open for appending (served by the daemon)
        asNobody('echo more >> "$1/appended"');
        // a file root made set-id through the mount, upper from the start
        writeFileSync(join(m, "created"), "x\n");
        chmodSync(join(m, "created"), SET_ID_RWX);
        asNobody('echo more >> "$1/created"');
        asNobody('truncate -s 2 "$1/truncated"');
        asNobody(': > "$1/reopened"');
        writeFileSync(join(m, "by-root"), "root's write\n", { flag: "a" });
        // root holds it open first, so its node passes writes through before nobody opens it
        const held = openSync(join(m, "held"), "a");
        try {
          asNobody('echo more >> "$1/held"');
        } finally {
          closeSync(held);
        }
        // stat(1) asks for the mode alone: what the kernel cached of it shows unless it was told
        // to forget it (a write makes it drop only times and size)
        return Object.fromEntries(
          FILES.map((name) => [name, execFileSync("stat", ["-c", "%a", join(m, name)], { encoding: "utf8" }).trim()]),
        );
      }) as [Record<string, string>, Record<string, string>];
      expect(unionfs).toEqual(kernel);
      expect(unionfs).toEqual({
        appended: "777",
        created: "777",
        truncated: "777",
        reopened: "777",
        "by-root": "6777",
        held: "777",
      });
    });
  });
}
