#!/usr/bin/env node
// The layering rules of DESIGN.md, checked on every import in src/ (run by `npm run check`):
//
// - imports point down the list cli, runner, store, daemon, fuse, devfuse, union, layers,
//   format, path, sys (a module may import its own directory and anything below its own);
// - src/errors.ts may be imported from anywhere; src/testing (test support) may import anything
//   and only tests may import it;
// - only src/sys imports koffi; src/union imports no transport and no CLI library;
// - no import cycles between files (type-only imports are erased at build time and do not count).
//
// Prints one line per violation and exits 1 if there is any. `--graph` prints the directory
// graph instead.
import { readdirSync, readFileSync } from "node:fs";
import { dirname, join, relative, resolve } from "node:path";
import { fileURLToPath } from "node:url";

const SRC = resolve(dirname(fileURLToPath(import.meta.url)), "../src");
/** top to bottom; a directory not listed here is a violation of its own */
const ORDER = ["cli", "runner", "store", "daemon", "fuse", "devfuse", "union", "layers", "format", "path", "sys"];
const FREE = new Set(["errors.ts"]);
const TEST_SUPPORT = "testing";
/** packages only some directories may import */
const PACKAGE_OWNERS = { koffi: ["sys"] };
/** packages some directories must not import */
const PACKAGE_BANS = { union: ["fuse-native", "commander"] };

const IMPORT = /(?:^|\n)\s*(?:import|export)\s[^;]*?\sfrom\s+["']([^"']+)["']|import\(\s*["']([^"']+)["']\s*\)/g;

/** every .ts / .cts / .mts file under src, relative to it */
function sources(dir = SRC) {
  return readdirSync(dir, { withFileTypes: true }).flatMap((e) => {
    const path = join(dir, e.name);
    if (e.isDirectory()) return sources(path);
    return /\.[cm]?ts$/.test(e.name) && !e.name.endsWith(".d.ts") ? [relative(SRC, path)] : [];
  });
}

const isTest = (file) => /\.test\.[cm]?ts$/.test(file);
const topOf = (file) => (file.includes("/") ? file.slice(0, file.indexOf("/")) : file);

/** the src-relative file an import specifier names, or null for a package */
function target(from, spec) {
  if (!spec.startsWith(".")) return null;
  return relative(SRC, resolve(SRC, dirname(from), spec)).replace(/\.([cm]?)js$/, ".$1ts");
}

function packageName(spec) {
  const parts = spec.split("/");
  return spec.startsWith("@") ? parts.slice(0, 2).join("/") : parts[0];
}

const files = sources();
const problems = [];
const edges = new Map(); // file -> files it imports (non-test files only, for cycles)
const dirEdges = new Set();

for (const file of files) {
  const text = readFileSync(join(SRC, file), "utf8");
  const top = topOf(file);
  const test = isTest(file) || top === TEST_SUPPORT;
  if (!test && !FREE.has(file) && !ORDER.includes(top)) problems.push(`${file}: src/${top} is not in the layer order`);
  const out = [];
  for (const m of text.matchAll(IMPORT)) {
    const spec = m[1] ?? m[2];
    const to = target(file, spec);
    if (to === null) {
      if (spec.startsWith("node:")) continue;
      const pkg = packageName(spec);
      const owners = PACKAGE_OWNERS[pkg];
      if (owners !== undefined && !owners.includes(top))
        problems.push(`${file}: imports ${pkg}, which only src/${owners.join(", src/")} may`);
      if ((PACKAGE_BANS[top] ?? []).includes(pkg)) problems.push(`${file}: src/${top} must not import ${pkg}`);
      continue;
    }
    const toTop = topOf(to);
    const typeOnly = /^\s*(?:import|export)\s+type\s/.test(m[0]);
    if (!isTest(file) && !typeOnly) out.push(to);
    if (FREE.has(to)) continue;
    if (toTop === TEST_SUPPORT) {
      if (!test) problems.push(`${file}: imports test support ${to}`);
      continue;
    }
    if (test || toTop === top) continue;
    dirEdges.add(`${top} -> ${toTop}`);
    const [from, down] = [ORDER.indexOf(top), ORDER.indexOf(toTop)];
    if (down < from) problems.push(`${file}: imports ${to}, which is above src/${top} (${ORDER.join(" > ")})`);
  }
  edges.set(file, out);
}

// file-level cycles, by depth-first search (each reported once, from its first file in order)
const state = new Map();
const stack = [];
function visit(file) {
  state.set(file, "open");
  stack.push(file);
  for (const to of edges.get(file) ?? []) {
    if (state.get(to) === "open")
      problems.push(`import cycle: ${[...stack.slice(stack.indexOf(to)), to].join(" -> ")}`);
    else if (!state.has(to) && edges.has(to)) visit(to);
  }
  stack.pop();
  state.set(file, "done");
}
for (const file of [...edges.keys()].sort()) if (!state.has(file)) visit(file);

if (process.argv.includes("--graph")) {
  for (const edge of [...dirEdges].sort()) console.log(edge);
} else if (problems.length > 0) {
  for (const p of problems) console.error(`check-layers: ${p}`);
  process.exit(1);
}
