/** `unionfs image import|ls|inspect|rm|export`. */
import type { Command } from "commander";
import { exportImage } from "../store/image-export.js";
import { importImage } from "../store/image-import.js";
import { LayerStore } from "../store/layer-store.js";
import {
  humanSize,
  printJson,
  printTable,
  progress,
  type StoreFlags,
  shortDigest,
  withStore,
} from "./store-context.js";
import { writeTarTo } from "./tar-output.js";

export function addImageCommands(program: Command): void {
  const image = program.command("image").description("images: named stacks of layers");

  image
    .command("import")
    .description("import a docker save tarball or an OCI image layout (directory or tar)")
    .argument("<source>")
    .option("--name <name>", "name for the image (default: the archive's tag)")
    .option("--store <dir>", "layer store directory")
    .action(async (source: string, opts: StoreFlags & { name?: string }) => {
      const imported = await withStore(opts, (store) =>
        importImage(store, source, { ...(opts.name === undefined ? {} : { name: opts.name }), progress }),
      );
      process.stdout.write(`${imported.name}\n`);
    });

  image
    .command("ls")
    .description("list images")
    .option("--json", "machine-readable output", false)
    .option("--store <dir>", "layer store directory")
    .action(async (opts: StoreFlags & { json: boolean }) => {
      const images = await withStore(opts, async (store) => {
        const layers = new Map((await store.listLayers()).map((l) => [l.diffId, l.size]));
        return (await store.listImages()).map((i) => ({
          name: i.name,
          chainId: LayerStore.chainIdOf(i),
          layers: i.layers.length,
          size: i.layers.reduce((sum, l) => sum + (layers.get(l) ?? 0), 0),
          created: i.created,
        }));
      });
      if (opts.json) return printJson(images);
      printTable(
        ["NAME", "CHAIN ID", "LAYERS", "SIZE", "CREATED"],
        images.map((i) => [i.name, shortDigest(i.chainId ?? ""), String(i.layers), humanSize(i.size), i.created]),
      );
    });

  image
    .command("inspect")
    .description("print an image's record: layers (DiffIDs, bottom first), chain ID, config")
    .argument("<name>")
    .option("--store <dir>", "layer store directory")
    .action(async (name: string, opts: StoreFlags) => {
      const record = await withStore(opts, (store) => store.requireImage(name));
      printJson({ ...record, chainId: LayerStore.chainIdOf(record) });
    });

  image
    .command("rm")
    .description("remove an image (its layers stay until gc)")
    .argument("<name>")
    .option("--store <dir>", "layer store directory")
    .action(async (name: string, opts: StoreFlags) => {
      await withStore(opts, (store) => store.removeImage(name));
    });

  image
    .command("export")
    .description("write an image as a tar that docker load and OCI tools read")
    .argument("<name>")
    .option("-o, --output <file>", "write to FILE instead of stdout")
    .option("--store <dir>", "layer store directory")
    .action(async (name: string, opts: StoreFlags & { output?: string }) => {
      await withStore(opts, (store) => writeTarTo(opts.output, (out) => exportImage(store, name, out)));
    });
}
