/** `unionfs layer import|ls|inspect|rm|export`. */
import { createReadStream } from "node:fs";
import type { Command } from "commander";
import { UserError } from "../errors.js";
import { exportLayer } from "../store/image-export.js";
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

export function addLayerCommands(program: Command): void {
  const layer = program.command("layer").description("layers: extracted layer tars, stored once by DiffID");

  layer
    .command("import")
    .description("import one layer tar (plain, gzip or zstd); prints its DiffID")
    .argument("<file>")
    .option("--store <dir>", "layer store directory")
    .action(async (file: string, opts: StoreFlags) => {
      const { layer: record } = await withStore(opts, (store) => {
        let last = 0;
        return store.addLayer(createReadStream(file), undefined, (bytes) => {
          if (bytes - last < 64 * 1024 * 1024) return;
          last = bytes;
          progress(`${humanSize(bytes)} read`);
        });
      });
      process.stdout.write(`${record.diffId}\n`);
    });

  layer
    .command("ls")
    .description("list layers")
    .option("--json", "machine-readable output", false)
    .option("--store <dir>", "layer store directory")
    .action(async (opts: StoreFlags & { json: boolean }) => {
      const rows = await withStore(opts, async (store) =>
        Promise.all((await store.listLayers()).map(async (l) => ({ ...l, usedBy: await store.layerUsers(l.diffId) }))),
      );
      if (opts.json) return printJson(rows);
      printTable(
        ["DIFF ID", "SIZE", "USED BY", "CREATED"],
        rows.map((l) => [shortDigest(l.diffId), humanSize(l.size), l.usedBy.join(", ") || "-", l.created]),
      );
    });

  layer
    .command("inspect")
    .description("print a layer's record and its users")
    .argument("<digest>")
    .option("--store <dir>", "layer store directory")
    .action(async (digest: string, opts: StoreFlags) => {
      const record = await withStore(opts, async (store) => {
        const diffId = await resolveLayer(store, digest);
        return {
          ...(await store.requireLayer(diffId)),
          path: store.diffDir(diffId),
          usedBy: await store.layerUsers(diffId),
        };
      });
      printJson(record);
    });

  layer
    .command("rm")
    .description("remove a layer no image or container uses")
    .argument("<digest>")
    .option("--store <dir>", "layer store directory")
    .action(async (digest: string, opts: StoreFlags) => {
      await withStore(opts, async (store) => store.removeLayer(await resolveLayer(store, digest)));
    });

  layer
    .command("export")
    .description("write a layer as an OCI layer tar")
    .argument("<digest>")
    .option("-o, --output <file>", "write to FILE instead of stdout")
    .option("--store <dir>", "layer store directory")
    .action(async (digest: string, opts: StoreFlags & { output?: string }) => {
      await withStore(opts, async (store) => {
        const diffId = await resolveLayer(store, digest);
        await writeTarTo(opts.output, (out) => exportLayer(store, diffId, out));
      });
    });
}

/** A full DiffID, or an unambiguous prefix of its hex (as `layer ls` prints them). */
async function resolveLayer(store: Awaited<Parameters<Parameters<typeof withStore>[1]>[0]>, ref: string) {
  const hex = ref.replace(/^sha256:/, "");
  const matches = (await store.listLayers()).filter((l) => l.diffId.slice(7).startsWith(hex));
  if (matches.length === 1 && matches[0] !== undefined) return matches[0].diffId;
  throw new UserError(matches.length === 0 ? `no layer ${ref} in the store` : `layer ${ref} is ambiguous`);
}
