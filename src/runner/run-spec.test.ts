import { describe, expect, it } from "vitest";
import { UserError } from "../errors.js";
import { parseRunArgs, splitLowerList } from "./run-spec.js";

const parse = (...argv: string[]) => parseRunArgs(argv);

describe("parseRunArgs", () => {
  it("takes the defaults: fuse driver, no network, no limits", () => {
    expect(parse("--lower", "/a:/b", "--", "sh", "-c", "true")).toEqual({
      source: { kind: "lowers", lowers: ["/a", "/b"] },
      driver: "fuse",
      limits: {},
      env: [],
      net: "none",
      rm: false,
      init: false,
      command: ["sh", "-c", "true"],
    });
  });

  it("reads every option, in both --opt value and --opt=value forms", () => {
    const spec = parse(
      "--lower=/l",
      "--upper",
      "/u",
      "--driver=overlay",
      "--memory",
      "64m",
      "--cpus=0.5",
      "--pids",
      "32",
      "--hostname",
      "box",
      "-e",
      "A=1",
      "--env=B",
      "-w",
      "/app",
      "--user",
      "nobody:nogroup",
      "--net",
      "host",
      "--init",
      "--rm",
      "--cgroup-parent",
      "/ci",
      "--",
      "true",
    );
    expect(spec).toMatchObject({
      source: { kind: "lowers", lowers: ["/l"] },
      upper: "/u",
      driver: "overlay",
      limits: { memoryBytes: 64 * 1024 * 1024, cpus: 0.5, pids: 32 },
      hostname: "box",
      env: ["A=1", "B"],
      cwd: "/app",
      user: "nobody:nogroup",
      net: "host",
      init: true,
      rm: true,
      cgroupParent: "/ci",
      command: ["true"],
    });
  });

  it("starts the command at the first non-option word, so its own options stay its own", () => {
    expect(parse("--lower", "/l", "ls", "-la", "--", "x")?.command).toEqual(["ls", "-la", "--", "x"]);
    expect(parse("--lower", "/l", "--", "--weird-name")?.command).toEqual(["--weird-name"]);
  });

  it("takes --image with --store, and lets the image supply the command", () => {
    expect(parse("--image", "busybox:latest", "--store", "/s")).toMatchObject({
      source: { kind: "image", image: "busybox:latest", store: "/s" },
      command: [],
    });
  });

  it("returns null for --help", () => {
    expect(parse("--help")).toBeNull();
    expect(parse("--lower", "/l", "-h")).toBeNull();
  });

  it.each([
    [["--", "true"], /--lower L1:L2... or --image/],
    [["--lower", "/l"], /no command/],
    [["--lower", "/l", "--image", "x", "--", "true"], /exclude each other/],
    [["--lower", "/l", "--store", "/s", "--", "true"], /--store goes with --image/],
    [["--bogus", "--", "true"], /unknown option --bogus/],
    [["--lower"], /--lower needs a value/],
    [["--lower", "/l", "--init=yes", "--", "true"], /takes no value/],
    [["--lower", "/l", "--driver", "btrfs", "--", "true"], /--driver must be one of fuse, overlay/],
    [["--lower", "/l", "--net", "bridge", "--", "true"], /--net must be one of none, host/],
    [["--lower", "/l", "--memory", "lots", "--", "true"], /--memory takes a size/],
    [["--lower", "/l", "--memory", "1m", "--", "true"], /at least 6m/],
    [["--lower", "/l", "--cpus", "0", "--", "true"], /at least 0.01/],
    [["--lower", "/l", "--cpus", "-1", "--", "true"], /--cpus/],
    [["--lower", "/l", "--pids", "0", "--", "true"], /positive/],
    [["--lower", "/l", "--hostname", "bad host", "--", "true"], /not a valid host name/],
    [["--lower", "/l", "-w", "relative", "--", "true"], /absolute path/],
    [["--lower", "/l", "--user", "a:b:c", "--", "true"], /--user takes/],
    [["--lower", "/l", "-e", "=x", "--", "true"], /bad environment entry/],
    [["--lower", "/a::/b", "--", "true"], /empty directory/],
  ])("refuses %j with one clear line", (argv, message) => {
    const run = () => parseRunArgs(argv);
    expect(run).toThrow(UserError);
    expect(run).toThrow(message);
  });
});

describe("splitLowerList", () => {
  it("splits on colons, leftmost first, with \\: and \\\\ escapes", () => {
    expect(splitLowerList("/a:/b:/c")).toEqual(["/a", "/b", "/c"]);
    expect(splitLowerList("/a\\:b:/c\\\\")).toEqual(["/a:b", "/c\\"]);
    expect(splitLowerList("/a\\x")).toEqual(["/a\\x"]);
  });
});
