/**
 * The unionfs command line for everything but `run` and `bench`: commander wires argv to one
 * module per command. Commands return an exit code or throw; main.ts turns throws into one
 * line and an exit status.
 */
import { join } from "node:path";
import { Command, Option } from "commander";
import { DEFAULT_TRANSPORT, TRANSPORT_NAMES, transportNamed } from "../daemon/transports.js";
import { UserError } from "../errors.js";
import { WHITEOUT_CHOICES, type WhiteoutChoice } from "../format/whiteout-style.js";
import { addContainerCommands } from "./container-command.js";
import { addImageCommands } from "./image-command.js";
import { addLayerCommands } from "./layer-command.js";
import { runMount } from "./mount.js";
import { parseFuseOverlayfsArgv, parseLowerList } from "./mount-args.js";
import { openStore, type StoreFlags } from "./store-context.js";
import { runUmount } from "./umount.js";

const SUBCOMMANDS = new Set([
  "mount",
  "umount",
  "unmount",
  "image",
  "layer",
  "container",
  "commit",
  "diff",
  "gc",
  "df",
  "help",
  "--help",
  "-h",
  "--version",
  "-V",
]);

function buildProgram(argv: readonly string[], setExit: (code: number) => void): Command {
  const program = new Command("unionfs")
    .description("overlayfs-compatible union filesystem on FUSE")
    .version("0.1.0")
    .exitOverride()
    .configureOutput({ outputError: (text, write) => write(`unionfs: ${text.replace(/^error: /, "")}`) });

  program
    .command("mount")
    .description("mount LOWER1:LOWER2[:...] (leftmost on top) with an optional writable UPPER on MOUNTPOINT")
    .argument("<dirs...>", "LOWERS [UPPER] MOUNTPOINT, or only MOUNTPOINT with --image or --container")
    .option("-w, --work <dir>", "work directory on the upper's filesystem")
    .option("--image <image>", "mount an image from the layer store, read-only")
    .option("--container <container>", "mount a container from the layer store (its upper is writable)")
    .option("--store <dir>", "layer store directory")
    .option("-f, --foreground", "stay in the foreground", false)
    .option("-d, --debug", "print every FUSE request (implies -f)", false)
    .option("-o, --options <opts>", "extra FUSE mount options (ro, nosuid, nodev, noexec)")
    .option("--transport <name>", `what serves the mount: ${TRANSPORT_NAMES.join(", ")}`, DEFAULT_TRANSPORT)
    .addOption(
      new Option("--whiteout <format>", "how deletions are recorded in the upper")
        .choices(WHITEOUT_CHOICES)
        .default("auto"),
    )
    .option("--volatile", "never sync copy-ups or fsync (overlayfs's volatile: faster, not crash-safe)", false)
    .option("--exit-with <pid>", "unmount and exit once process PID has exited (as unionfs run uses it)")
    .action(async (dirs: string[], opts: MountFlags) => {
      const transport = transportNamed(opts.transport);
      const layers = await mountLayers(dirs, opts);
      setExit(
        await runMount({
          ...layers,
          foreground: opts.foreground || opts.debug,
          debug: opts.debug,
          extraOptions: opts.options === undefined ? [] : opts.options.split(",").filter((o) => o.length > 0),
          whiteout: opts.whiteout,
          volatile: opts.volatile,
          transport,
          exitWith: opts.exitWith === undefined ? undefined : parsePid(opts.exitWith),
          argv,
        }),
      );
    });

  addImageCommands(program);
  addLayerCommands(program);
  addContainerCommands(program);

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

interface MountFlags extends StoreFlags {
  work?: string;
  image?: string;
  container?: string;
  foreground: boolean;
  debug: boolean;
  options?: string;
  transport: string;
  whiteout: WhiteoutChoice;
  volatile: boolean;
  exitWith?: string;
}

function parsePid(text: string): number {
  const pid = Number(text);
  if (!/^[0-9]+$/.test(text) || !Number.isSafeInteger(pid) || pid <= 0) {
    throw new UserError(`--exit-with needs a process id, not '${text}'`);
  }
  return pid;
}

/** The layer directories of a mount: from the command line, or from the store. */
async function mountLayers(dirs: string[], opts: MountFlags) {
  const fromStore = opts.image !== undefined || opts.container !== undefined;
  if (fromStore) {
    if (opts.image !== undefined && opts.container !== undefined) {
      throw new UserError("--image and --container exclude each other");
    }
    if (dirs.length !== 1) throw new UserError("usage: unionfs mount --image IMAGE|--container NAME MOUNTPOINT");
    const store = await openStore(opts);
    if (opts.image !== undefined) {
      const image = await store.requireImage(opts.image);
      return { lowers: store.lowerDirs(image.layers), mountpoint: dirs[0] as string };
    }
    const c = await store.requireContainer(opts.container as string);
    const dir = store.containerDir(c.id);
    return {
      lowers: store.lowerDirs(c.layers),
      upper: join(dir, "upper"),
      work: join(dir, "work"),
      mountpoint: dirs[0] as string,
    };
  }
  if (dirs.length < 2 || dirs.length > 3) {
    throw new UserError("usage: unionfs mount LOWER1[:LOWER2...] [UPPER] MOUNTPOINT");
  }
  return {
    lowers: parseLowerList(dirs[0] as string),
    upper: dirs.length === 3 ? dirs[1] : undefined,
    work: opts.work,
    mountpoint: dirs[dirs.length - 1] as string,
  };
}

async function runFuseOverlayfsForm(argv: readonly string[]): Promise<number> {
  const args = parseFuseOverlayfsArgv(argv.slice(2));
  const transport = transportNamed(args.transport ?? DEFAULT_TRANSPORT);
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
    volatile: args.options.volatile,
    transport,
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
