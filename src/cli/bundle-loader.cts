/**
 * Loads a CommonJS bundle as require() would, but with V8's code cache: the bytecode of the
 * bundle's functions, saved at build time after a run through them, so that start-up neither
 * parses nor compiles them again. (Node 20 has no compile cache of its own:
 * module.enableCompileCache arrived in Node 22.)
 *
 * Invariant: a cache is used only with the build of the bundle it was made from. V8 itself
 * refuses data from another V8 version or other flags (`cachedDataRejected`), but it checks the
 * source only by its length, and bytecode run against the wrong source is wrong code. So the
 * bundle's first line carries an id (a hash of the rest, written by tools/bundle-run.mjs) and
 * the cache file is named after it: a cache of another build is never even read. A missing or
 * refused cache costs only speed: the bundle is compiled as usual.
 */
import { readFileSync } from "node:fs";
import { dirname } from "node:path";
import { Script } from "node:vm";

export interface LoadedBundle {
  /** the bundle's module.exports */
  exports: unknown;
  /** "used": V8 took the cache; "refused": V8 did not; "none": missing or of another build */
  cache: "used" | "refused" | "none";
  /** where the code cache of this build of the bundle belongs; null without an id */
  cacheFile: string | null;
  /** V8's code cache of everything compiled so far */
  makeCache(): Buffer;
}

/** Where the code cache of the build `id` of `bundle` lives. */
export function cacheFileOf(bundle: string, id: string): string {
  return `${bundle}.${id}.cache`;
}

/** The id on the bundle's first line (`// bundle <id>`), or "" when there is none. */
export function bundleId(source: string): string {
  const firstLine = source.slice(0, source.indexOf("\n"));
  return firstLine.startsWith("// bundle ") ? firstLine.slice("// bundle ".length) : "";
}

/**
 * `bundleRequire` is what the bundle's own require() calls go through: one that resolves from
 * the bundle's directory. A caller in that directory passes its own; without it, one is made
 * with node:module, which costs a run ~0.3 ms (it starts the ES module loader's modules).
 */
export function loadBundle(file: string, bundleRequire?: NodeJS.Require): LoadedBundle {
  const source = readFileSync(file, "utf8");
  const id = bundleId(source);
  const cacheFile = id === "" ? null : cacheFileOf(file, id);
  const cachedData = cacheFile === null ? undefined : readCache(cacheFile);
  // The wrapper require() puts around a CommonJS module, so the bundle sees the same names.
  const script = new Script(`(function (exports, require, module, __filename, __dirname) {${source}\n})`, {
    filename: file,
    cachedData,
  });
  const module = { exports: {} as unknown };
  const wrapper = script.runInThisContext() as (...args: unknown[]) => void;
  const req = bundleRequire ?? (require("node:module") as typeof import("node:module")).createRequire(file);
  wrapper.call(module.exports, module.exports, req, module, file, dirname(file));
  return {
    exports: module.exports,
    cache: cachedData === undefined ? "none" : script.cachedDataRejected === true ? "refused" : "used",
    cacheFile,
    makeCache: () => script.createCachedData(),
  };
}

function readCache(path: string): Buffer | undefined {
  try {
    return readFileSync(path);
  } catch {
    return undefined;
  }
}
