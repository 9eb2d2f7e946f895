// @ts-check
/**
 * Whiteout and opaque checks: probeEntry (src/union/probe.ts, which reads through
 * src/layers/probe.ts) on each kind of name a layer can hold, next to the system calls it is
 * made of, async (what the core uses) and sync, so the cost of the promise / thread-pool hop
 * and of the ENOENT exception shows.
 */
import { lstatSync } from "node:fs";
import { lstat, mkdir, writeFile } from "node:fs/promises";
import { join } from "node:path";
import b from "benny";
import { lgetxattr, lgetxattrAsync, probeEntry } from "./core.mjs";
import { IS_ROOT, opaque, removeTree, tempRoot, whiteout } from "./fixtures.mjs";

/** @param {{caseOptions: object, save: (name: string) => any}} opts */
export async function probeSuite(opts) {
  const root = await tempRoot("probe");
  try {
    const dir = join(root, "layer");
    /** the layer directory as the core hands it to a probe: a path in bytes */
    const dirBytes = Buffer.from(dir);
    await mkdir(join(dir, "plain-dir"), { recursive: true });
    await mkdir(join(dir, "opaque-dir"));
    await mkdir(join(dir, "marker-dir"));
    await writeFile(join(dir, "file"), "x");
    await whiteout(dir, "gone");
    await writeFile(join(dir, ".wh.gone-oci"), "");
    await opaque(join(dir, "opaque-dir"));
    await writeFile(join(dir, "marker-dir", ".wh..wh..opq"), "");
    const expect = async (/** @type {string} */ name, /** @type {string} */ kind, opaqueDir = false) => {
      const p = await probeEntry(dirBytes, name, false);
      if (p.kind !== kind || (p.kind === "dir" && p.opaque !== opaqueDir))
        throw new Error(`probe of ${name}: ${JSON.stringify(p)}`);
    };
    const probeCase = (
      /** @type {string} */ title,
      /** @type {string} */ name,
      /** @type {string} */ kind,
      opaqueDir = false,
    ) =>
      b.add(
        title,
        async () => {
          await expect(name, kind, opaqueDir);
          return async () => {
            await probeEntry(dirBytes, name, false);
          };
        },
        opts.caseOptions,
      );
    const file = join(dir, "file");
    const missing = join(dir, "missing");
    return await b.suite(
      "whiteout / opaque probes (one layer)",
      probeCase("probe: regular file", "file", "other"),
      probeCase("probe: missing name (+ .wh. sibling check)", "missing", "none"),
      probeCase(`probe: whiteout (${IS_ROOT ? "char 0/0" : ".wh. file"})`, "gone", "whiteout"),
      probeCase("probe: OCI .wh. whiteout", "gone-oci", "whiteout"),
      probeCase("probe: plain directory", "plain-dir", "dir", false),
      probeCase(
        `probe: opaque directory (${IS_ROOT ? "trusted.overlay.opaque" : ".wh..wh..opq"})`,
        "opaque-dir",
        "dir",
        true,
      ),
      probeCase("probe: opaque directory (.wh..wh..opq)", "marker-dir", "dir", true),
      b.add(
        "syscall: lstat hit, fs.promises",
        async () => {
          await lstat(file, { bigint: true });
        },
        opts.caseOptions,
      ),
      b.add(
        "syscall: lstat miss, fs.promises (throws ENOENT)",
        async () => {
          try {
            await lstat(missing, { bigint: true });
          } catch {}
        },
        opts.caseOptions,
      ),
      b.add(
        "syscall: lstat hit, lstatSync",
        () => {
          lstatSync(file, { bigint: true });
        },
        opts.caseOptions,
      ),
      b.add(
        "syscall: lstat miss, lstatSync throwIfNoEntry:false",
        () => {
          lstatSync(missing, { bigint: true, throwIfNoEntry: false });
        },
        opts.caseOptions,
      ),
      b.add(
        "syscall: getxattr miss, lgetxattrAsync (koffi worker + sync retry)",
        async () => {
          await lgetxattrAsync(file, "trusted.overlay.opaque");
        },
        opts.caseOptions,
      ),
      b.add(
        "syscall: getxattr miss, lgetxattr sync",
        () => {
          lgetxattr(file, "trusted.overlay.opaque");
        },
        opts.caseOptions,
      ),
      b.cycle(),
      b.complete(),
      ...opts.save("probe"),
    );
  } finally {
    removeTree(root);
  }
}
