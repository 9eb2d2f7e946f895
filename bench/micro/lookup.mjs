// @ts-check
/**
 * Lookup through N lower layers (plus an empty upper, as in a container): directory `d` exists
 * in every layer, the files only in the bottom one, so resolving one costs a probe of the upper
 * and of every lower.
 *
 *   cold    a name not looked up before: probes of every layer (lower probes are then cached)
 *   miss    a name no layer has (an ENOENT lookup, as for a file about to be created)
 *   cached  a name already in the node table: what PathNodes pays per path component
 *   path    PathNodes.resolve of a 4-component path of known names (every fuse-native request)
 */
import b from "benny";
import { PathNodes } from "./core.mjs";
import { files, layerDirs, openUnion, removeTree, tempRoot } from "./fixtures.mjs";

const POOL = 4000;

/** @param {{depths: number[], caseOptions: object, save: (name: string) => any}} opts */
export async function lookupSuite(opts) {
  const root = await tempRoot("lookup");
  try {
    const cases = [];
    for (const depth of opts.depths) {
      const dirs = await layerDirs(`${root}/n${depth}`, depth);
      const names = Array.from({ length: POOL }, (_, i) => `file-${i}`);
      for (const l of dirs.lowers) await files(`${l}/d`, []);
      const bottom = /** @type {string} */ (dirs.lowers[dirs.lowers.length - 1]);
      await files(`${bottom}/d`, names);
      await files(`${bottom}/d/a/b/c`, ["leaf"]);
      cases.push(
        b.add(
          `cold lookup, ${depth} layers`,
          async () => {
            let fs = await openUnion(dirs);
            let dir = await fs.lookup(fs.table.root, "d");
            let i = 0;
            return async () => {
              if (i === POOL) {
                // a fresh union: every name is unknown again (1 in POOL iterations pays for it)
                fs = await openUnion(dirs);
                dir = await fs.lookup(fs.table.root, "d");
                i = 0;
              }
              if (dir === null || (await fs.lookup(dir, /** @type {string} */ (names[i++]))) === null)
                throw new Error("lookup failed");
            };
          },
          opts.caseOptions,
        ),
        b.add(
          `miss, ${depth} layers`,
          async () => {
            const fs = await openUnion(dirs);
            const dir = await fs.lookup(fs.table.root, "d");
            let i = 0;
            return async () => {
              if (dir === null || (await fs.lookup(dir, `absent-${i++}`)) !== null)
                throw new Error("lookup found a ghost");
            };
          },
          opts.caseOptions,
        ),
        b.add(
          `cached lookup, ${depth} layers`,
          async () => {
            const fs = await openUnion(dirs);
            const dir = await fs.lookup(fs.table.root, "d");
            if (dir === null) throw new Error("no d");
            await fs.lookup(dir, "file-1");
            return async () => {
              await fs.lookup(dir, "file-1");
            };
          },
          opts.caseOptions,
        ),
        b.add(
          `path resolve d/a/b/c/leaf, ${depth} layers`,
          async () => {
            const fs = await openUnion(dirs);
            const nodes = new PathNodes(fs);
            await nodes.resolve("/d/a/b/c/leaf");
            return async () => {
              await nodes.resolve("/d/a/b/c/leaf");
            };
          },
          opts.caseOptions,
        ),
      );
    }
    return await b.suite("lookup through N layers", ...cases, b.cycle(), b.complete(), ...opts.save("lookup"));
  } finally {
    removeTree(root);
  }
}
