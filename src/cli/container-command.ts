/** `unionfs container create|ls|rm`, `commit`, `diff`, `gc`, `df`. */
import { join } from "node:path";
import type { Command } from "commander";
import { commitContainer } from "../store/commit.js";
import { collectGarbage, diskUsage } from "../store/housekeeping.js";
import { diffUpper } from "../store/upper-diff.js";
import { humanSize, printJson, printTable, type StoreFlags, withStore } from "./store-context.js";

export function addContainerCommands(program: Command): void {
  const container = program.command("container").description("containers: a writable upper over an image");

  container
    .command("create")
    .description("make a container (upper + work dir) on top of an image's layers; prints its name")
    .argument("<image>")
    .option("--name <name>", "container name (default: the first 12 hex digits of its id)")
    .option("--store <dir>", "layer store directory")
    .action(async (image: string, opts: StoreFlags & { name?: string }) => {
      const c = await withStore(opts, (store) => store.createContainer(image, opts.name));
      process.stdout.write(`${c.name}\n`);
    });

  container
    .command("ls")
    .description("list containers")
    .option("--json", "machine-readable output", false)
    .option("--store <dir>", "layer store directory")
    .action(async (opts: StoreFlags & { json: boolean }) => {
      const rows = await withStore(opts, (store) => store.listContainers());
      if (opts.json) return printJson(rows);
      printTable(
        ["NAME", "ID", "IMAGE", "CREATED"],
        rows.map((c) => [c.name, c.id.slice(0, 12), c.image, c.created]),
      );
    });

  container
    .command("rm")
    .description("remove a container and its upper")
    .argument("<container>")
    .option("--store <dir>", "layer store directory")
    .action(async (ref: string, opts: StoreFlags) => {
      await withStore(opts, (store) => store.removeContainer(ref));
    });

  program
    .command("commit")
    .description("turn a container's changes into a new layer and image; prints the image name")
    .argument("<container>")
    .option("--name <image>", "name of the new image")
    .option("--store <dir>", "layer store directory")
    .action(async (ref: string, opts: StoreFlags & { name?: string }) => {
      const image = await withStore(opts, (store) => commitContainer(store, ref, opts.name));
      process.stdout.write(`${image.name}\n`);
    });

  program
    .command("diff")
    .description("list a container's changes: A added, C changed, D deleted (as docker diff)")
    .argument("<container>")
    .option("--store <dir>", "layer store directory")
    .action(async (ref: string, opts: StoreFlags) => {
      const changes = await withStore(opts, async (store) => {
        const c = await store.requireContainer(ref);
        return diffUpper(join(store.containerDir(c.id), "upper"), store.lowerDirs(c.layers));
      });
      process.stdout.write(changes.map((c) => `${c.kind} ${c.path}\n`).join(""));
    });

  program
    .command("gc")
    .description("remove layers no image or container uses")
    .option("--store <dir>", "layer store directory")
    .action(async (opts: StoreFlags) => {
      const removed = await withStore(opts, (store) => collectGarbage(store));
      process.stdout.write(removed.map((d) => `removed ${d}\n`).join(""));
    });

  program
    .command("df")
    .description("disk use per image: bytes shared with other images and bytes only it holds")
    .option("--json", "machine-readable output", false)
    .option("--store <dir>", "layer store directory")
    .action(async (opts: StoreFlags & { json: boolean }) => {
      const usage = await withStore(opts, (store) => diskUsage(store));
      if (opts.json) return printJson(usage);
      printTable(
        ["IMAGE", "LAYERS", "SIZE", "SHARED", "UNIQUE"],
        usage.images.map((u) => [
          u.image,
          String(u.layers),
          humanSize(u.size),
          humanSize(u.shared),
          humanSize(u.unique),
        ]),
      );
      process.stdout.write(`total stored: ${humanSize(usage.total)}\n`);
    });
}
