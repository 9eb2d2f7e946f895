// @ts-check
/**
 * Tar import of a 10k-entry layer through unpackLayer (src/store/unpack.ts): 100 directories
 * of small files, with OCI whiteouts (`.wh.NAME`) and opaque markers among them, read from
 * memory, so the figure is the unpacker's (parse, digest, path checks, writes, whiteout
 * conversion, final sync and rename), not the disk's read speed.
 */
import { execFileSync } from "node:child_process";
import { mkdir, writeFile } from "node:fs/promises";
import { Readable } from "node:stream";
import b from "benny";
import tar from "tar-stream";
import { unpackLayer } from "./core.mjs";
import { IS_ROOT, removeTree, tempRoot } from "./fixtures.mjs";

/** A layer tar of `entries` entries (directories included). */
export async function layerTar(/** @type {number} */ entries) {
  const pack = tar.pack();
  const chunks = /** @type {Buffer[]} */ ([]);
  pack.on("data", (c) => chunks.push(/** @type {Buffer} */ (c)));
  const done = new Promise((resolve, reject) => {
    pack.on("end", () => resolve(undefined));
    pack.on("error", reject);
  });
  const mtime = new Date("2020-01-01T00:00:00Z");
  const perDir = Math.max(1, Math.ceil(entries / 100) - 1);
  let n = 0;
  for (let d = 0; n < entries; d++) {
    const dir = `dir-${d}`;
    pack.entry({ name: `${dir}/`, type: "directory", mode: 0o755, mtime });
    n++;
    if (d % 10 === 3 && n < entries) {
      pack.entry({ name: `${dir}/.wh..wh..opq`, size: 0, mode: 0o644, mtime }, "");
      n++;
    }
    for (let f = 0; f < perDir && n < entries; f++, n++) {
      const name = f % 50 === 7 ? `${dir}/.wh.gone-${f}` : `${dir}/file-${f}.txt`;
      const body = name.includes(".wh.") ? "" : `content of ${name}\n`.repeat(8);
      pack.entry({ name, size: Buffer.byteLength(body), mode: 0o644, mtime }, body);
    }
  }
  pack.finalize();
  await done;
  return { bytes: Buffer.concat(chunks), entries: n };
}

/** @param {{entries: number, slowCaseOptions: object, save: (name: string) => any}} opts */
export async function unpackSuite(opts) {
  const root = await tempRoot("unpack");
  try {
    const { bytes, entries } = await layerTar(opts.entries);
    const style = IS_ROOT ? "chardev" : "file";
    let i = 0;
    return await b.suite(
      `tar import of a ${entries}-entry layer (${(bytes.length / 2 ** 20).toFixed(1)} MiB tar)`,
      b.add(
        `unpackLayer, whiteouts as ${style}`,
        async () => {
          // the layers stay until the end: removing them here would be timed too
          await unpackLayer(Readable.from([bytes]), `${root}/layer-${i++}`, { whiteout: style });
        },
        opts.slowCaseOptions,
      ),
      b.add(
        "GNU tar -x of the same tar into a directory (for scale)",
        async () => {
          const tarFile = `${root}/layer.tar`;
          await writeFile(tarFile, bytes);
          return async () => {
            const dest = `${root}/gnu-${i++}`;
            await mkdir(dest);
            execFileSync("tar", ["-xf", tarFile, "-C", dest]);
          };
        },
        opts.slowCaseOptions,
      ),
      b.cycle(),
      b.complete(),
      ...opts.save("unpack"),
    );
  } finally {
    removeTree(root);
  }
}
