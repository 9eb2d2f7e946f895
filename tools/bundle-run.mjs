#!/usr/bin/env node
// Builds what the `unionfs` launcher (src/cli/unionfs.cts) starts `unionfs run` from, after tsc
// has built dist/:
//   dist/cli/run.cjs        dist/cli/run-main.js and all it may load, as one CommonJS file
//                           (npm packages stay outside), first line "// bundle <id>"
//   dist/cli/run.cjs.<id>.cache  V8's code cache of that build of it, made after a run through
//                           it, so that the functions a run calls are in it and start-up
//                           compiles none of them
// CommonJS, because an ES module entry costs Node's ES module loader (~12 M instructions); one
// file, because one script is what V8 caches; the same JS tsc made, so both entries behave alike.
//   dist/cli/unionfs.cjs    the launcher tsc made, with bundle-loader.cjs inlined: Node's first
//                           require() of a file costs ~0.5 ms, the launcher's own is enough
//
// The training run is a real `unionfs run --driver overlay` on an empty lower with /bin/true as
// the native helper: the same code as a run, without namespaces or privileges, except that the
// helper is spawned rather than exec'd in this process's place. The cache is then
// valid for this Node's V8 and flags; with another Node, V8 refuses it and the bundle compiles as
// usual (slower, never wrong) until the next build.
//
// usage: node tools/bundle-run.mjs   (npm run build runs it)
import { createHash } from "node:crypto";
import { mkdtempSync, readdirSync, renameSync, rmSync, writeFileSync } from "node:fs";
import { createRequire } from "node:module";
import { tmpdir } from "node:os";
import { basename, dirname, join } from "node:path";
import { fileURLToPath } from "node:url";
import { build, formatMessages } from "esbuild";

const REPO = join(dirname(fileURLToPath(import.meta.url)), "..");
const ENTRY = join(REPO, "dist/cli/run-main.js");
/** in dist/cli/, beside main.js: paths relative to import.meta.dirname stay right */
const BUNDLE = join(REPO, "dist/cli/run.cjs");
const LAUNCHER = join(REPO, "dist/cli/unionfs.cjs");

const { loadBundle, cacheFileOf } = createRequire(import.meta.url)(join(REPO, "dist/cli/bundle-loader.cjs"));

const result = await build({
  entryPoints: [ENTRY],
  bundle: true,
  platform: "node",
  format: "cjs",
  target: "node20",
  packages: "external",
  // import() as require(): a vm.Script (how the launcher runs the bundle, for its code cache)
  // has no loader for import()
  supported: { "dynamic-import": false },
  // the modules find the helper, the addon and the CLI relative to themselves
  define: { "import.meta.dirname": "__dirname", "import.meta.filename": "__filename" },
  write: false,
  logLevel: "silent",
});
// e.g. an import.meta.url, which a CommonJS bundle would leave undefined
if (result.warnings.length > 0 || result.errors.length > 0) {
  const messages = await formatMessages([...result.errors, ...result.warnings], { kind: "warning" });
  throw new Error(`bundle-run: esbuild warned; the bundle would not run as the modules do:\n${messages.join("")}`);
}
const code = result.outputFiles[0]?.text;
if (code === undefined) throw new Error("bundle-run: esbuild produced no output");
const id = createHash("sha256").update(code).digest("hex").slice(0, 16);
writeAtomically(BUNDLE, `// bundle ${id}\n${code}`);
// the caches of earlier builds: never used again
for (const name of readdirSync(dirname(BUNDLE))) {
  if (name.startsWith(`${basename(BUNDLE)}.`) && name.endsWith(".cache")) rmSync(join(dirname(BUNDLE), name));
}

await inlineLoader(LAUNCHER);

const loaded = loadBundle(BUNDLE);
const status = await train(loaded.exports.runMain);
if (status !== 0) console.error(`bundle-run: warning: the training run exited ${status}; the code cache covers less`);
writeAtomically(cacheFileOf(BUNDLE, id), loaded.makeCache());

/** Rewrites the launcher with what it requires of ours inlined; main.js stays a separate import. */
async function inlineLoader(launcher) {
  const out = await build({
    entryPoints: [launcher],
    bundle: true,
    platform: "node",
    format: "cjs",
    target: "node20",
    packages: "external",
    external: ["./main.js"],
    sourcemap: "linked",
    outfile: launcher,
    allowOverwrite: true,
    write: false,
    logLevel: "silent",
  });
  if (out.warnings.length > 0 || out.errors.length > 0) {
    const messages = await formatMessages([...out.errors, ...out.warnings], { kind: "warning" });
    throw new Error(`bundle-run: esbuild warned on the launcher:\n${messages.join("")}`);
  }
  for (const file of out.outputFiles) writeAtomically(file.path, file.text);
}

async function train(runMain) {
  const scratch = mkdtempSync(join(tmpdir(), "unionfs-bundle-run-"));
  try {
    // handover false: this process must come back to write the cache rather than become the helper
    return await runMain(["--driver", "overlay", "--lower", scratch, "--", "/bin/true"], {
      helper: "/bin/true",
      handover: false,
    });
  } finally {
    rmSync(scratch, { recursive: true, force: true });
  }
}

function writeAtomically(path, data) {
  const temp = `${path}.tmp-${process.pid}`;
  writeFileSync(temp, data);
  renameSync(temp, path);
}
