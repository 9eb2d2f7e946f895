/**
 * `unionfs mount` refusing bad input and broken environments (issue 3, item 8): each case must
 * print exactly one line on stderr naming the problem, exit non-zero, and leave nothing mounted
 * and no daemon running. Environments (no /dev/fuse, no libfuse2, no fusermount) are made real
 * in a private mount namespace rather than simulated in the code under test.
 */
import { execFileSync } from "node:child_process";
import { chmodSync, writeFileSync } from "node:fs";
import { join } from "node:path";
import { afterEach, beforeEach, expect, it } from "vitest";
import { TRANSPORT_NAMES } from "../daemon/transports.js";
import { type RunOptions, type RunResult, runCli } from "../testing/cli-run.js";
import { describeAsRoot } from "../testing/root-gate.js";
import { Scratch } from "../testing/scratch.js";

/** The libfuse.so.2 the dynamic linker would load, as `ldconfig -p` lists it. */
function libfuse2Path(): string | null {
  const listing = execFileSync("ldconfig", ["-p"], { encoding: "utf8" });
  return listing.match(/^\s*libfuse\.so\.2 \(.*\) => (\S+)$/m)?.[1] ?? null;
}

/** The one line an unknown transport name gets: it lists every registered name. */
function unknownTransport(name: string): RegExp {
  return new RegExp(`^unionfs: unknown transport '${name}' \\(known: ${TRANSPORT_NAMES.join(", ")}\\)$`);
}

interface Case {
  name: string;
  /** builds the argv (after main.js) and run options inside the test dir */
  setup: (t: Scratch) => { args: string[]; opts?: RunOptions };
  stderr: RegExp;
}

function layers(t: Scratch): { lower: string; mnt: string } {
  const lower = t.mkdir("lower");
  writeFileSync(join(lower, "f"), "x");
  return { lower, mnt: t.mkdir("mnt") };
}

function emptyFile(t: Scratch, name: string): string {
  const path = join(t.root, name);
  writeFileSync(path, "", { mode: 0o644 });
  return path;
}

/**
 * `args` run as nobody in a namespace where `helper` is nowhere: not on PATH, and an empty file
 * over it where libfuse also looks (its build-time dir, /usr/bin or /bin, whatever PATH says).
 * nobody must be able to reach the layers, so the helper is the only thing missing.
 */
function asNobodyWithout(t: Scratch, helper: string, args: string[]): { args: string[]; opts: RunOptions } {
  chmodSync(t.root, 0o755);
  const empty = emptyFile(t, `no-${helper}`);
  const hide = [`/usr/bin/${helper}`, `/bin/${helper}`].map(
    (p) => `if [ -e ${p} ]; then mount --bind ${empty} ${p}; fi`,
  );
  return {
    args,
    opts: {
      namespaceSetup: hide,
      user: { uid: 65534, gid: 65534 },
      env: { PATH: "/nonexistent", XDG_RUNTIME_DIR: undefined },
    },
  };
}

const CASES: Case[] = [
  {
    name: "a nonexistent lower",
    setup: (t) => {
      const { lower, mnt } = layers(t);
      return { args: ["mount", `${lower}:${t.root}/nope`, mnt] };
    },
    stderr: /^unionfs: lower directory .*\/nope does not exist$/,
  },
  {
    name: "a nonexistent lower, in the foreground",
    setup: (t) => ({ args: ["mount", "-f", `${t.root}/nope`, layers(t).mnt] }),
    stderr: /^unionfs: lower directory .*\/nope does not exist$/,
  },
  {
    name: "a lower that is a file",
    setup: (t) => ({ args: ["mount", emptyFile(t, "plain"), layers(t).mnt] }),
    stderr: /^unionfs: lower directory .*\/plain is not a directory$/,
  },
  {
    name: "a nonexistent upper",
    setup: (t) => {
      const { lower, mnt } = layers(t);
      return { args: ["mount", "-w", t.mkdir("work"), lower, `${t.root}/no-upper`, mnt] };
    },
    stderr: /^unionfs: upper directory .*\/no-upper does not exist$/,
  },
  {
    name: "a missing mountpoint",
    setup: (t) => ({ args: ["mount", layers(t).lower, `${t.root}/no-mnt`] }),
    stderr: /^unionfs: mountpoint .*\/no-mnt does not exist$/,
  },
  {
    name: "a mountpoint that is a file",
    setup: (t) => ({ args: ["mount", layers(t).lower, emptyFile(t, "mnt-file")] }),
    stderr: /^unionfs: mountpoint .*\/mnt-file is not a directory$/,
  },
  {
    name: "a busy mountpoint (something is mounted there)",
    setup: (t) => {
      const { lower, mnt } = layers(t);
      execFileSync("mount", ["-t", "tmpfs", "-o", "size=1m", "busy-test", mnt]);
      return { args: ["mount", lower, mnt] };
    },
    stderr: /^unionfs: mountpoint .*\/mnt is busy: tmpfs is already mounted there$/,
  },
  {
    name: "no /dev/fuse (a /dev without it)",
    setup: (t) => {
      const { lower, mnt } = layers(t);
      const devices = ["null c 1 3", "zero c 1 5", "random c 1 8", "urandom c 1 9"];
      const setup = ["mount -t tmpfs -o mode=0755 unionfs-test-dev /dev"];
      for (const d of devices) setup.push(`mknod -m 0666 /dev/${d}`);
      return { args: ["mount", lower, mnt], opts: { namespaceSetup: setup } };
    },
    stderr: /^unionfs: no FUSE device: \/dev\/fuse is missing/,
  },
  {
    name: "/dev/fuse that is not the FUSE device",
    setup: (t) => {
      const { lower, mnt } = layers(t);
      return { args: ["mount", lower, mnt], opts: { namespaceSetup: ["mount --bind /dev/null /dev/fuse"] } };
    },
    stderr: /^unionfs: no FUSE device: \/dev\/fuse is not the FUSE character device/,
  },
  {
    name: "no libfuse2 (the library is an empty file)",
    setup: (t) => {
      const { lower, mnt } = layers(t);
      const lib = libfuse2Path();
      if (lib === null) throw new Error("ldconfig -p lists no libfuse.so.2: cannot hide it");
      const empty = emptyFile(t, "empty.so");
      return { args: ["mount", lower, mnt], opts: { namespaceSetup: [`mount --bind ${empty} ${lib}`] } };
    },
    stderr: /^unionfs: libfuse2 is not installed or cannot be loaded/,
  },
  {
    name: "a non-root caller without fusermount",
    setup: (t) => {
      const { lower, mnt } = layers(t);
      return asNobodyWithout(t, "fusermount", ["mount", lower, mnt]);
    },
    stderr: /^unionfs: fusermount not found: a non-root mount needs it/,
  },
  {
    name: "a non-root caller asking for the devfuse transport without fusermount3",
    setup: (t) => {
      const { lower, mnt } = layers(t);
      return asNobodyWithout(t, "fusermount3", ["mount", "--transport", "devfuse", lower, mnt]);
    },
    stderr:
      /^unionfs: fusermount3 not found: a non-root mount with --transport devfuse needs it \(apt-get install fuse3\)$/,
  },
  {
    name: "-o without lowerdir",
    setup: (t) => ({ args: ["-o", `upperdir=${t.mkdir("upper")}`, layers(t).mnt] }),
    stderr: /^unionfs: missing option lowerdir=$/,
  },
  {
    name: "-o lowerdir with an empty member",
    setup: (t) => {
      const { lower, mnt } = layers(t);
      return { args: ["-o", `lowerdir=${lower}::${lower}`, mnt] };
    },
    stderr: /^unionfs: empty directory in lower list '.*::.*'$/,
  },
  {
    name: "-o without a value",
    setup: (t) => ({ args: [layers(t).mnt, "-o"] }),
    stderr: /^unionfs: option -o needs a value$/,
  },
  {
    name: "an unknown --transport (mount subcommand)",
    setup: (t) => {
      const { lower, mnt } = layers(t);
      return { args: ["mount", "--transport", "nosuch", lower, mnt] };
    },
    stderr: unknownTransport("nosuch"),
  },
  {
    name: "an unknown --transport (fuse-overlayfs form)",
    setup: (t) => {
      const { lower, mnt } = layers(t);
      return { args: ["--transport=nosuch", "-o", `lowerdir=${lower}`, mnt] };
    },
    stderr: unknownTransport("nosuch"),
  },
  {
    name: "an unknown flag (mount subcommand)",
    setup: (t) => {
      const { lower, mnt } = layers(t);
      return { args: ["mount", "--bogus", lower, mnt] };
    },
    stderr: /^unionfs: unknown option '--bogus'/,
  },
  {
    name: "an unknown flag (fuse-overlayfs form)",
    setup: (t) => {
      const { lower, mnt } = layers(t);
      return { args: ["-x", "-o", `lowerdir=${lower}`, mnt] };
    },
    stderr: /^unionfs: unknown flag -x$/,
  },
];

describeAsRoot("unionfs mount refuses bad input with one line and leaves nothing behind", () => {
  let t: Scratch;
  beforeEach(() => {
    t = new Scratch("unionfs-cli-", true);
  });
  afterEach(async () => {
    await t.cleanup();
  });

  function expectRefused(result: RunResult, stderr: RegExp): void {
    expect(result.stderrLines).toEqual([expect.stringMatching(stderr)]);
    expect(result.signal).toBeNull();
    expect(result.code).not.toBe(0);
    expect(result.stdout).toBe("");
  }

  it.each(CASES)("$name", async ({ setup, stderr }) => {
    const { args, opts } = setup(t);
    const before = t.leftovers();
    const result = await runCli(args, { ...opts, env: { ...t.env, ...opts?.env } });
    expectRefused(result, stderr);
    expect(t.leftovers()).toEqual(before);
  });
});
