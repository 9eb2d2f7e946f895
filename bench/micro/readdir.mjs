// @ts-check
/**
 * readdir merge of a 10k-entry directory spread over 3 lower layers (entry i in layer i % 3),
 * with 1% of the bottom layer's names whited out in the top one and 1% of the names present
 * in two layers, under an empty upper.
 *
 *   cold   a fresh union: every layer listed, every name looked up (probes, which also give its type)
 *   warm   the same union again: listings and nodes cached (each node keeps its type); what is
 *          left per call is the merge, the sort and a node-table hit per entry
 *   merge  DirMerger.mergedNames alone, listings cached (the pure merge and sort)
 */
import b from "benny";
import { DirMerger, LowerListings } from "./core.mjs";
import { files, layerDirs, openUnion, removeTree, tempRoot, whiteout } from "./fixtures.mjs";

export const ENTRIES = 10_000;

/** @param {{entries: number, caseOptions: object, slowCaseOptions: object, save: (name: string) => any}} opts */
export async function readdirSuite(opts) {
  const root = await tempRoot("readdir");
  try {
    const dirs = await layerDirs(root, 3);
    const byLayer = /** @type {string[][]} */ ([[], [], []]);
    for (let i = 0; i < opts.entries; i++) {
      byLayer[i % 3]?.push(`entry-${String(i).padStart(6, "0")}`);
      if (i % 100 === 1) byLayer[(i + 1) % 3]?.push(`entry-${String(i).padStart(6, "0")}`);
    }
    for (let l = 0; l < 3; l++) await files(`${dirs.lowers[l]}/big`, /** @type {string[]} */ (byLayer[l]));
    const bottomNames = /** @type {string[]} */ (byLayer[2]);
    for (let i = 0; i < bottomNames.length; i += 100)
      await whiteout(`${dirs.lowers[0]}/big`, /** @type {string} */ (bottomNames[i]));
    const expected = (await listOnce(dirs)).length;
    const check = (/** @type {number} */ n) => {
      if (n !== expected) throw new Error(`readdir returned ${n} entries, expected ${expected}`);
    };
    return await b.suite(
      `readdir merge of a ${opts.entries}-entry directory over 3 layers`,
      b.add(
        "cold (fresh union)",
        async () => {
          check((await listOnce(dirs)).length);
        },
        opts.slowCaseOptions,
      ),
      b.add(
        "warm (same union)",
        async () => {
          const fs = await openUnion(dirs);
          const dir = await fs.lookup(fs.table.root, "big");
          if (dir === null) throw new Error("no big");
          check((await fs.readdir(dir)).length);
          return async () => {
            check((await fs.readdir(dir)).length);
          };
        },
        opts.slowCaseOptions,
      ),
      b.add(
        "merge only (DirMerger, listings cached)",
        async () => {
          const fs = await openUnion(dirs);
          const dir = await fs.lookup(fs.table.root, "big");
          if (dir === null) throw new Error("no big");
          const merger = new DirMerger(new LowerListings());
          const branches = dir.lowers;
          await merger.mergedNames(branches);
          return async () => {
            await merger.mergedNames(branches);
          };
        },
        opts.caseOptions,
      ),
      b.cycle(),
      b.complete(),
      ...opts.save("readdir"),
    );
  } finally {
    removeTree(root);
  }
}

async function listOnce(/** @type {{lowers: string[], upper: string, work: string}} */ dirs) {
  const fs = await openUnion(dirs);
  const dir = await fs.lookup(fs.table.root, "big");
  if (dir === null) throw new Error("no big");
  return fs.readdir(dir);
}
