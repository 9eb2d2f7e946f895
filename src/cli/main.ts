#!/usr/bin/env node
/**
 * The unionfs command line. This is the only module that prints or exits: commands return an
 * exit code or throw; a UserError is one line on stderr, anything else is an internal error
 * printed with a hint to report it.
 */
import { Command, Option } from "commander";
import { UserError } from "../errors.js";
import type { WhiteoutChoice } from "../fuse/serve.js";
import { isDaemonChild, reportToParent } from "./daemonize.js";
import { runMount } from "./mount.js";
import { parseFuseOverlayfsArgv, parseLowerList } from "./mount-args.js";
import { runUmount } from "./umount.js";

const SUBCOMMANDS = new Set(["mount", "umount", "unmount", "help", "--help", "-h", "--version", "-V"]);

function buildProgram(argv: readonly string[], setExit: (code: number) => void): Command {
  const program = new Command("unionfs")
    .description("overlayfs-compatible union filesystem on FUSE")
    .version("0.1.0")
    .exitOverride()
    .configureOutput({ outputError: (text, write) => write(`unionfs: ${text.replace(/^error: /, "")}`) });

  program
    .command("mount")
    .description("mount LOWER1:LOWER2[:...] (leftmost on top) with an optional writable UPPER on MOUNTPOINT")
    .argument("<lowers>", "colon-separated lower directories, topmost first (\\: escapes a colon)")
    .argument("<dirs...>", "[UPPER] MOUNTPOINT")
    .option("-w, --work <dir>", "work directory on the upper's filesystem")
    .option("-f, --foreground", "stay in the foreground", false)
    .option("-d, --debug", "print every FUSE request (implies -f)", false)
    .option("-o, --options <opts>", "extra FUSE mount options (ro, nosuid, nodev, noexec)")
    .addOption(
      new Option("--whiteout <format>", "how deletions are recorded in the upper")
        .choices(["auto", "chardev", "file"])
        .default("auto"),
    )
    .action(
      async (
        lowers: string,
        dirs: string[],
        opts: { work?: string; foreground: boolean; debug: boolean; options?: string; whiteout: WhiteoutChoice },
      ) => {
        if (dirs.length > 2) throw new UserError("usage: unionfs mount LOWER1[:LOWER2...] [UPPER] MOUNTPOINT");
        const mountpoint = dirs[dirs.length - 1] as string;
        setExit(
          await runMount({
            lowers: parseLowerList(lowers),
            upper: dirs.length === 2 ? dirs[0] : undefined,
            work: opts.work,
            mountpoint,
            foreground: opts.foreground || opts.debug,
            debug: opts.debug,
            extraOptions: opts.options === undefined ? [] : opts.options.split(",").filter((o) => o.length > 0),
            whiteout: opts.whiteout,
            argv,
          }),
        );
      },
    );

  program
    .command("umount")
    .alias("unmount")
    .description("unmount MOUNTPOINT and wait until its daemon has exited")
    .argument("<mountpoint>")
    .option("-l, --lazy", "detach even if busy", false)
    .action(async (mountpoint: string, opts: { lazy: boolean }) => {
      setExit(await runUmount(mountpoint, opts.lazy));
    });
  return program;
}

async function runFuseOverlayfsForm(argv: readonly string[]): Promise<number> {
  const args = parseFuseOverlayfsArgv(argv.slice(2));
  const daemonArgv = argv.slice(1);
  for (const opt of args.options.unknown) process.stderr.write(`unionfs: warning: unknown option ${opt} ignored\n`);
  return runMount({
    lowers: args.options.lowerdir ?? [],
    upper: args.options.upperdir,
    work: args.options.workdir,
    mountpoint: args.mountpoint,
    foreground: args.foreground,
    debug: args.debug,
    extraOptions: args.options.passthrough,
    whiteout: "auto",
    argv: daemonArgv,
  });
}

export async function main(argv: readonly string[]): Promise<number> {
  const first = argv[2];
  if (first !== undefined && !SUBCOMMANDS.has(first)) return runFuseOverlayfsForm(argv);
  let code = 0;
  const program = buildProgram(argv.slice(1), (c) => {
    code = c;
  });
  await program.parseAsync(argv as string[]);
  return code;
}

function fail(e: unknown): number {
  const code = (e as { code?: unknown }).code;
  if (typeof code === "string" && code.startsWith("commander.")) {
    const exitCode = (e as { exitCode?: number }).exitCode ?? 2;
    return code === "commander.helpDisplayed" || code === "commander.version" ? 0 : exitCode === 0 ? 0 : 2;
  }
  if (e instanceof UserError) {
    reportToParent({ error: e.message });
    if (!isDaemonChild()) process.stderr.write(`unionfs: ${e.message}\n`);
    return e.exitCode;
  }
  const message = e instanceof Error ? (e.stack ?? e.message) : String(e);
  reportToParent({ error: `internal error: ${message.split("\n")[0]}` });
  process.stderr.write(`unionfs: internal error (please report it): ${message}\n`);
  return 70;
}

main(process.argv).then(
  (code) => process.exit(code),
  (e: unknown) => process.exit(fail(e)),
);
