#!/usr/bin/env node
// @ts-check
/**
 * Data sets for the storage-driver benchmarks (bench/), built from what a Debian machine has:
 * /usr/share and /usr/include (small files), the python standard library, a git checkout made
 * from those files, and one large file of pseudo-random bytes. Nothing large is committed; the
 * size is a flag (`--files N`, `--big-mib M`).
 *
 *   node tools/make-dataset.mjs [--files 10000] [--big-mib 1024] [--parts tree,big,...] DIR
 *
 * Layout under DIR (root only: whiteouts are character devices, opaque marks trusted xattrs,
 * the encodings kernel overlayfs, fuse-overlayfs and unionfs all read):
 *   layers/l1 l2 l3     lower layers, l1 topmost (lowerdir=l1:l2:l3)
 *   bare/               the merged view flattened: cp -a from a read-only kernel overlay mount
 *   lists/<part>.txt    every path of a part in the merged view, relative to the root, NUL-separated
 *   untar.tar, py-modules.txt, manifest.json
 *
 * Parts (each a top-level directory of the merged view, built only when a workload needs it):
 *   tree   N small files from /usr/share spread over the three layers by a hash of their path,
 *          so nearly every directory merges three layers; 2% overridden in l1, 1% of l3's files
 *          whited out in l1, 1 in 40 directories opaque in l2
 *   rmdir  ~0.4 N entries (files + directories) over l1 and l2, for `rm -rf`
 *   repo   a git repository of ~0.8 N files (/usr/include first) in l2, committed clean, with
 *          core.checkStat=minimal and core.trustctime=false so every driver sees it clean
 *   pylib  the python standard library with its __pycache__ in l1; py-modules.txt lists the
 *          top-level modules whose import loads ~N/50 (10..200) modules from it
 *   big    big/big.bin of --big-mib MiB in l3
 *   untar  untar.tar: a tar of the merged tree/ (needs tree)
 *
 * A data set is reused while its manifest matches the generator version and sizes; missing parts
 * are added. Paths must not contain ':' or ',' (they go into overlay mount options).
 */
import { execFileSync, spawnSync } from "node:child_process";
import { createHash } from "node:crypto";
import { existsSync, readdirSync, readFileSync } from "node:fs";
import { chmod, copyFile, lstat, mkdir, open, readdir, rm, utimes, writeFile } from "node:fs/promises";
import { dirname, join, relative, resolve } from "node:path";
import { fileURLToPath } from "node:url";

const GENERATOR_VERSION = 3;
export const PARTS = /** @type {const} */ (["tree", "rmdir", "repo", "pylib", "big", "untar"]);
/** @typedef {(typeof PARTS)[number]} Part */
const MAX_SMALL_FILE = 256 * 1024;
/** a fixed mtime for the git checkout, well before the index is written (no racy entries) */
const REPO_MTIME = new Date("2020-01-01T00:00:00Z");
const PYTHON = existsSync("/usr/bin/python3") ? "/usr/bin/python3" : "python3";

/**
 * @typedef {object} DatasetOptions
 * @property {string} dir
 * @property {number} files   small files in tree/ (the other parts scale with it)
 * @property {number} bigMiB  size of big/big.bin
 * @property {readonly Part[]} parts
 * @property {(line: string) => void} [log]
 */

/**
 * @typedef {object} Manifest
 * @property {number} generator
 * @property {number} files
 * @property {number} bigMiB
 * @property {string[]} layers  absolute, topmost first
 * @property {string} bare
 * @property {Record<string, Record<string, number>>} parts  per built part: counts
 * @property {string[]} pyModules
 */

/** Sizes derived from the number of tree files. */
export function sizes(files) {
  return {
    tree: files,
    rmdir: Math.max(20, Math.round(files * 0.4)),
    repo: Math.max(20, Math.round(files * 0.8)),
    pyModules: Math.min(200, Math.max(10, Math.round(files / 50))),
  };
}

/** Parts `parts` depend on, in build order. */
function withDependencies(parts) {
  const wanted = new Set(parts);
  if (wanted.has("untar")) wanted.add("tree");
  return PARTS.filter((p) => wanted.has(p));
}

/** Builds (or completes) the data set and returns its manifest. */
export async function ensureDataset(/** @type {DatasetOptions} */ opts) {
  const log = opts.log ?? (() => {});
  const dir = resolve(opts.dir);
  if (/[:,\\]/.test(dir)) throw new Error(`data set directory ${dir} must not contain ':', ',' or '\\'`);
  const layers = ["l1", "l2", "l3"].map((l) => join(dir, "layers", l));
  const bare = join(dir, "bare");
  const manifestPath = join(dir, "manifest.json");
  /** @type {Manifest} */
  let manifest = {
    generator: GENERATOR_VERSION,
    files: opts.files,
    bigMiB: opts.bigMiB,
    layers,
    bare,
    parts: {},
    pyModules: [],
  };
  const old = readManifest(manifestPath);
  if (old !== null && old.generator === GENERATOR_VERSION && old.files === opts.files && old.bigMiB === opts.bigMiB) {
    manifest = old;
  } else if (existsSync(dir)) {
    await removeDataset(dir);
  }
  for (const d of [...layers, bare, join(dir, "lists")]) await mkdir(d, { recursive: true });
  // written first, so an interrupted build can be recognised (and removed) as a data set
  await writeFile(manifestPath, `${JSON.stringify(manifest, null, 2)}\n`);
  const missing = withDependencies(opts.parts).filter((p) => manifest.parts[p] === undefined);
  if (missing.length === 0) return manifest;
  const n = sizes(opts.files);
  const needsSources = missing.some((p) => p === "tree" || p === "rmdir" || p === "repo");
  const sources = needsSources ? sourceFiles(n.tree + n.rmdir + n.repo) : null;
  for (const part of missing) {
    const started = Date.now();
    log(`data set: building ${part}`);
    const ctx = { dir, layers, bare, sources, n, bigMiB: opts.bigMiB };
    const counts = await BUILDERS[part](ctx, manifest);
    if (part !== "untar") await flatten(ctx, part);
    if (part === "repo") checkRepoClean(join(bare, "repo"));
    if (part !== "untar") counts.mergedEntries = await writeList(dir, bare, part);
    manifest.parts[part] = counts;
    await writeFile(manifestPath, `${JSON.stringify(manifest, null, 2)}\n`);
    log(`data set: ${part} done in ${((Date.now() - started) / 1000).toFixed(1)} s ${JSON.stringify(counts)}`);
  }
  return manifest;
}

function readManifest(path) {
  try {
    return /** @type {Manifest} */ (JSON.parse(readFileSync(path, "utf8")));
  } catch {
    return null;
  }
}

/**
 * @typedef {object} Source
 * @property {string} abs
 * @property {string} rel  relative to its source root (/usr/share or /usr/include)
 */

/**
 * Regular files of /usr/include and /usr/share, each in sorted path order, up to `limit` each
 * (small-file filtering drops a few, so the walk collects some spare).
 */
function sourceFiles(/** @type {number} */ limit) {
  /** @type {{include: Source[], share: Source[]}} */
  const out = { include: [], share: [] };
  for (const [key, root] of /** @type {const} */ ([
    ["include", "/usr/include"],
    ["share", "/usr/share"],
  ])) {
    walkSync(root, root, out[key], Math.ceil(limit * 1.2) + 100);
  }
  return out;
}

function walkSync(root, dir, out, limit) {
  let entries;
  try {
    entries = readdirSync(dir, { withFileTypes: true });
  } catch {
    return;
  }
  entries.sort((a, b) => (a.name < b.name ? -1 : a.name > b.name ? 1 : 0));
  for (const e of entries) {
    if (out.length >= limit) return;
    const abs = join(dir, e.name);
    if (e.name.includes("\n") || /[:,\\]/.test(e.name)) continue;
    if (e.isDirectory()) walkSync(root, abs, out, limit);
    else if (e.isFile()) out.push({ abs, rel: relative(root, abs) });
  }
}

/** Takes `count` small files from `list` starting at `from`; pads with synthetic files. */
async function take(list, from, count) {
  /** @type {{abs: string | null, rel: string}[]} */
  const picked = [];
  for (let i = from; i < list.length && picked.length < count; i++) {
    const src = list[i];
    try {
      const st = await lstat(src.abs);
      if (st.size <= MAX_SMALL_FILE) picked.push(src);
    } catch {}
  }
  for (let i = 0; picked.length < count; i++) picked.push({ abs: null, rel: `synthetic/d${i % 50}/f${i}.txt` });
  return picked;
}

function hash(text) {
  return createHash("md5").update(text).digest().readUInt32LE(0);
}

/**
 * @param {{abs: string | null, rel: string}} src
 * @param {string} dest
 * @param {Date} [mtime]  default: the source's
 */
async function copyInto(src, dest, mtime) {
  await mkdir(dirname(dest), { recursive: true });
  if (src.abs === null) {
    await writeFile(dest, `synthetic file ${src.rel}\n`.repeat(40));
  } else {
    await copyFile(src.abs, dest);
    const st = await lstat(src.abs);
    await chmod(dest, st.mode & 0o7777);
    mtime ??= st.mtime;
  }
  if (mtime !== undefined) await utimes(dest, mtime, mtime);
}

async function pool(items, width, fn) {
  let next = 0;
  const worker = async () => {
    while (next < items.length) await fn(items[next++]);
  };
  await Promise.all(Array.from({ length: width }, worker));
}

const BUILDERS = {
  tree: buildTree,
  rmdir: buildRmdir,
  repo: buildRepo,
  pylib: buildPylib,
  big: buildBig,
  untar: buildUntar,
};

async function buildTree(ctx) {
  const files = await take(ctx.sources.share, 0, ctx.n.tree);
  const [l1, l2] = ctx.layers;
  const counts = { files: files.length, overrides: 0, whiteouts: 0, opaqueDirs: 0 };
  /** @type {Map<string, Set<number>>} directory -> layers that hold some of its files */
  const dirLayers = new Map();
  await pool(files, 16, async (src) => {
    const rel = `tree/${src.rel}`;
    const h = hash(rel);
    const layer = h % 3;
    await copyInto(src, join(ctx.layers[layer], rel));
    for (let d = dirname(rel); d !== "."; d = dirname(d)) {
      const set = dirLayers.get(d) ?? new Set();
      set.add(layer);
      dirLayers.set(d, set);
    }
    if (layer !== 0 && h % 50 === 7) {
      await copyInto(src, join(l1, rel));
      counts.overrides++;
    } else if (layer === 2 && h % 100 === 13) {
      await mkdir(dirname(join(l1, rel)), { recursive: true });
      execFileSync("mknod", [join(l1, rel), "c", "0", "0"]);
      counts.whiteouts++;
    }
  });
  for (const [d, set] of [...dirLayers].sort()) {
    if (!set.has(2) || set.size < 2 || hash(d) % 40 !== 3) continue;
    await mkdir(join(l2, d), { recursive: true });
    setXattr(join(l2, d), "trusted.overlay.opaque", "y");
    counts.opaqueDirs++;
  }
  return counts;
}

async function buildRmdir(ctx) {
  const files = await take(ctx.sources.share, ctx.n.tree, ctx.n.rmdir);
  const dirs = new Set();
  let count = 0;
  for (const src of files) {
    if (count >= ctx.n.rmdir) break;
    const rel = `rmdir/${src.rel}`;
    for (let d = dirname(rel); d !== "rmdir" && !dirs.has(d); d = dirname(d)) {
      dirs.add(d);
      count++;
    }
    await copyInto(src, join(ctx.layers[hash(rel) % 2], rel));
    count++;
  }
  return { entries: count, dirs: dirs.size };
}

async function buildRepo(ctx) {
  const fromInclude = await take(ctx.sources.include, 0, Math.min(ctx.n.repo, ctx.sources.include.length));
  const real = fromInclude.filter((s) => s.abs !== null);
  const rest = await take(ctx.sources.share, ctx.n.tree + ctx.n.rmdir, ctx.n.repo - real.length);
  const repo = join(ctx.layers[1], "repo");
  const files = [
    ...real.map((s) => ({ ...s, rel: `include/${s.rel}` })),
    ...rest.map((s) => ({ ...s, rel: `share/${s.rel}` })),
  ];
  await pool(files, 16, (src) => copyInto(src, join(repo, src.rel), REPO_MTIME));
  const home = join(ctx.dir, "git-home");
  await mkdir(home, { recursive: true });
  const env = {
    ...process.env,
    HOME: home,
    GIT_CONFIG_NOSYSTEM: "1",
    GIT_AUTHOR_NAME: "bench",
    GIT_AUTHOR_EMAIL: "bench@localhost",
    GIT_COMMITTER_NAME: "bench",
    GIT_COMMITTER_EMAIL: "bench@localhost",
    GIT_AUTHOR_DATE: "2020-01-02T00:00:00Z",
    GIT_COMMITTER_DATE: "2020-01-02T00:00:00Z",
  };
  const git = (...args) => execFileSync("git", ["-C", repo, ...args], { env, stdio: ["ignore", "ignore", "pipe"] });
  git("init", "-q", "-b", "main");
  for (const [k, v] of [
    ["core.checkStat", "minimal"],
    ["core.trustctime", "false"],
    ["core.untrackedCache", "false"],
    ["core.fsmonitor", "false"],
    ["gc.auto", "0"],
  ]) {
    git("config", k, v);
  }
  git("add", "-A");
  git("commit", "-q", "-m", "data set");
  await rm(home, { recursive: true, force: true });
  return { files: files.length };
}

const PY_SKIP = new Set([
  "test",
  "idlelib",
  "tkinter",
  "turtle",
  "turtledemo",
  "antigravity",
  "this",
  "ensurepip",
  "venv",
  "lib2to3",
  "pydoc_data",
  "site-packages",
  "dist-packages",
  "lib-dynload",
  "config",
]);

async function buildPylib(ctx, manifest) {
  const stdlib = execFileSync(PYTHON, ["-S", "-E", "-c", "import sysconfig; print(sysconfig.get_path('stdlib'))"], {
    encoding: "utf8",
  }).trim();
  const tag = execFileSync(PYTHON, ["-S", "-E", "-c", "import sys; print(sys.implementation.cache_tag)"], {
    encoding: "utf8",
  }).trim();
  const dest = join(ctx.layers[0], "pylib");
  /** @type {{abs: string, rel: string}[]} */
  const files = [];
  const walk = (dir) => {
    for (const e of readdirSync(dir, { withFileTypes: true })) {
      const abs = join(dir, e.name);
      const rel = relative(stdlib, abs);
      if (dir === stdlib && (PY_SKIP.has(e.name) || e.name.startsWith("config-"))) continue;
      if (e.isDirectory()) walk(abs);
      else if (e.isFile() && (e.name.endsWith(".py") || e.name.endsWith(`.${tag}.pyc`))) files.push({ abs, rel });
    }
  };
  walk(stdlib);
  await pool(files, 16, (src) => copyInto(src, join(dest, src.rel)));
  const candidates = readdirSync(dest, { withFileTypes: true })
    .filter(
      (e) =>
        !e.name.startsWith("_") &&
        (e.isDirectory() ? existsSync(join(dest, e.name, "__init__.py")) : e.name.endsWith(".py")),
    )
    .map((e) => e.name.replace(/\.py$/, ""))
    .filter((n) => !PY_SKIP.has(n))
    .sort();
  const candidatesFile = join(ctx.dir, "py-candidates.txt");
  await writeFile(candidatesFile, candidates.join("\n"));
  // The same preamble as the workload (-S -E -B, nothing imported first), so the modules a
  // name pulls in are the ones the workload will load from the mount.
  const script = [
    "import sys, importlib",
    "root, target, names = sys.argv[1], int(sys.argv[2]), open(sys.argv[3]).read().split()",
    "sys.path.insert(0, root)",
    "loaded = lambda: sum(1 for m in list(sys.modules.values()) if (getattr(m, '__file__', None) or '').startswith(root + '/'))",
    "chosen = []",
    "for n in names:",
    "    if loaded() >= target: break",
    "    try:",
    "        importlib.import_module(n); chosen.append(n)",
    "    except BaseException: pass",
    "print(' '.join(chosen)); print(loaded())",
  ].join("\n");
  const res = spawnSync(
    PYTHON,
    ["-S", "-E", "-B", "-W", "ignore", "-c", script, dest, String(ctx.n.pyModules), candidatesFile],
    {
      encoding: "utf8",
      stdio: ["ignore", "pipe", "ignore"],
      timeout: 120_000,
    },
  );
  await rm(candidatesFile, { force: true });
  const [chosenLine = "", loadedLine = "0"] = res.stdout.trim().split("\n").slice(-2);
  manifest.pyModules = chosenLine.split(" ").filter((n) => n.length > 0);
  await writeFile(join(ctx.dir, "py-modules.txt"), `${manifest.pyModules.join("\n")}\n`);
  return { files: files.length, topLevelImports: manifest.pyModules.length, modulesLoaded: Number(loadedLine) };
}

async function buildBig(ctx) {
  const path = join(ctx.layers[2], "big", "big.bin");
  await mkdir(dirname(path), { recursive: true });
  const chunk = Buffer.alloc(1 << 20);
  for (let i = 0; i < chunk.length; i += 32) createHash("sha256").update(String(i)).digest().copy(chunk, i);
  const fh = await open(path, "w");
  try {
    for (let i = 0; i < ctx.bigMiB; i++) {
      chunk.writeUInt32LE(i, 0);
      await fh.write(chunk, 0, chunk.length, i * chunk.length);
    }
    await fh.sync();
  } finally {
    await fh.close();
  }
  return { mib: ctx.bigMiB };
}

async function buildUntar(ctx) {
  execFileSync("tar", ["-cf", join(ctx.dir, "untar.tar"), "-C", ctx.bare, "tree"]);
  const listed = execFileSync("tar", ["-tf", join(ctx.dir, "untar.tar")], { encoding: "utf8", maxBuffer: 1 << 28 });
  return { entries: listed.split("\n").filter((l) => l.length > 0).length };
}

function setXattr(path, name, value) {
  const r = spawnSync("setfattr", ["-n", name, "-v", value, path]);
  if (r.status === 0) return;
  execFileSync(PYTHON, [
    "-c",
    "import os, sys; os.setxattr(sys.argv[1], sys.argv[2], sys.argv[3].encode(), follow_symlinks=False)",
    path,
    name,
    value,
  ]);
}

/** Copies one part of the merged view into bare/, through a read-only kernel overlay mount. */
async function flatten(ctx, part) {
  const mnt = join(ctx.dir, "flatten-mnt");
  await mkdir(mnt, { recursive: true });
  execFileSync("mount", ["-t", "overlay", "overlay", "-o", `ro,lowerdir=${ctx.layers.join(":")}`, mnt]);
  try {
    await rm(join(ctx.bare, part), { recursive: true, force: true });
    if (existsSync(join(mnt, part))) execFileSync("cp", ["-a", join(mnt, part), join(ctx.bare, part)]);
  } finally {
    execFileSync("umount", [mnt]);
  }
  await rm(mnt, { recursive: true });
}

function checkRepoClean(repo) {
  const res = spawnSync("git", ["-C", repo, "status", "--porcelain"], {
    encoding: "utf8",
    env: { ...process.env, GIT_CONFIG_NOSYSTEM: "1", GIT_OPTIONAL_LOCKS: "0" },
  });
  if (res.status !== 0 || res.stdout.trim() !== "") {
    throw new Error(`the generated repository is not clean: ${res.stderr || res.stdout.slice(0, 200)}`);
  }
}

/** Writes lists/<part>.txt (NUL-separated paths relative to the merged root); returns the count. */
async function writeList(dir, bare, part) {
  const paths = [];
  const walk = async (rel) => {
    for (const e of await readdir(join(bare, rel), { withFileTypes: true })) {
      const child = `${rel}/${e.name}`;
      paths.push(child);
      if (e.isDirectory()) await walk(child);
    }
  };
  if (existsSync(join(bare, part))) {
    paths.push(part);
    await walk(part);
  }
  await writeFile(join(dir, "lists", `${part}.txt`), paths.join("\0"));
  return paths.length;
}

/** rm -rf that stays on one filesystem (a leftover mount below is never entered). */
export async function removeTree(path) {
  execFileSync("rm", ["-rf", "--one-file-system", "--", path]);
}

/** Removes a data set directory; refuses a non-empty directory that is not one. */
export async function removeDataset(dir) {
  if (!existsSync(dir)) return;
  if (!existsSync(join(dir, "manifest.json")) && readdirSync(dir).length > 0) {
    throw new Error(`${dir} is not empty and holds no data set (manifest.json): not removing it`);
  }
  await removeTree(dir);
}

function parseArgs(argv) {
  const opts = { dir: "", files: 10_000, bigMiB: 1024, parts: /** @type {Part[]} */ ([...PARTS]) };
  for (let i = 0; i < argv.length; i++) {
    const arg = argv[i];
    const value = () => {
      const v = argv[++i];
      if (v === undefined) throw new Error(`${arg} needs a value`);
      return v;
    };
    if (arg === "--files") opts.files = Number.parseInt(value(), 10);
    else if (arg === "--big-mib") opts.bigMiB = Number.parseInt(value(), 10);
    else if (arg === "--parts") opts.parts = /** @type {Part[]} */ (value().split(","));
    else if (arg?.startsWith("-")) throw new Error(`unknown flag ${arg}`);
    else if (arg !== undefined) opts.dir = arg;
  }
  if (opts.dir === "") throw new Error("usage: make-dataset.mjs [--files N] [--big-mib M] [--parts tree,big,...] DIR");
  if (!(opts.files > 0) || !(opts.bigMiB > 0)) throw new Error("--files and --big-mib must be positive integers");
  for (const p of opts.parts) if (!PARTS.includes(p)) throw new Error(`unknown part ${p} (${PARTS.join(", ")})`);
  return opts;
}

if (process.argv[1] !== undefined && resolve(process.argv[1]) === fileURLToPath(import.meta.url)) {
  try {
    const opts = parseArgs(process.argv.slice(2));
    const manifest = await ensureDataset({ ...opts, log: (l) => process.stderr.write(`${l}\n`) });
    process.stdout.write(`${JSON.stringify(manifest.parts, null, 2)}\n`);
  } catch (e) {
    process.stderr.write(`make-dataset: ${e instanceof Error ? e.message : String(e)}\n`);
    process.exitCode = 1;
  }
}
