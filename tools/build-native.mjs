#!/usr/bin/env node
// Builds the native parts of `unionfs run` with the C compiler alone (no node-gyp):
//   native/unionfs-run.c    -> native/build/unionfs-run         the helper (libc and kernel headers;
//                              linked statically when libc.a is there: no dynamic loader on
//                              every run, ~1.5 ms of its start-up here)
//   native/unionfs-wait.c   -> native/build/unionfs-wait        what `unionfs run` becomes while the
//                              helper runs (static too)
//   native/unionfs-spawn.c  -> native/build/unionfs-spawn.node  posix_spawn for Node (N-API;
//                              needs Node's headers, which Node's own packages ship)
// Runs at `npm ci` (postinstall, before the TypeScript build) and is cheap to re-run: it
// rebuilds only what is older than its source or a header in native/. Without a compiler it
// warns and exits 0, so the rest of unionfs installs; `unionfs run` then says how to build the
// helper. Without Node's headers only the addon is skipped: `unionfs run` then starts the
// helper with child_process, which works the same and starts slower.
//
// usage: node tools/build-native.mjs [--force]
import { execFileSync } from "node:child_process";
import { existsSync, mkdirSync, readdirSync, renameSync, rmSync, statSync } from "node:fs";
import { homedir } from "node:os";
import { dirname, join } from "node:path";
import { fileURLToPath } from "node:url";

const REPO = join(dirname(fileURLToPath(import.meta.url)), "..");
const CC = process.env.CC ?? "cc";
const FLAGS = ["-std=gnu11", "-O2", "-Wall", "-Wextra", "-Werror", "-D_FORTIFY_SOURCE=2", "-fstack-protector-strong"];

const force = process.argv.includes("--force");

const helper = build("unionfs-run.c", "unionfs-run", [["-static"], []], "the native helper of 'unionfs run'");
if (helper) {
  // without it, Node waits for the helper itself (slower to exit, same result)
  build("unionfs-wait.c", "unionfs-wait", [["-static"], []], "the waiter of 'unionfs run'");
  const headers = nodeHeaders();
  if (headers === null) {
    warn(
      "Node's headers (node_api.h) were not found: 'unionfs run' will start its helper with child_process " +
        "(slower start); set npm_config_nodedir to the directory holding include/node to build unionfs-spawn.node",
    );
  } else {
    build("unionfs-spawn.c", "unionfs-spawn.node", [["-shared", "-fPIC", "-I", headers]], "the spawn addon");
  }
}

/**
 * Compiles native/SOURCE into native/build/OUTPUT unless it is newer than the source and every
 * header in native/, with the first of `variants` (extra flags) that works; the compiler's
 * complaints are shown for the last one only. False if none did.
 */
function build(source, output, variants, what) {
  const src = join(REPO, "native", source);
  const out = join(REPO, "native", "build", output);
  const headers = readdirSync(join(REPO, "native")).filter((n) => n.endsWith(".h"));
  const newest = Math.max(...[src, ...headers.map((h) => join(REPO, "native", h))].map((f) => statSync(f).mtimeMs));
  if (!force && existsSync(out) && statSync(out).mtimeMs >= newest) return true;
  mkdirSync(dirname(out), { recursive: true });
  const temp = `${out}.tmp-${process.pid}`;
  let failure = null;
  for (const [i, extraFlags] of variants.entries()) {
    const last = i === variants.length - 1;
    try {
      execFileSync(CC, [...FLAGS, ...extraFlags, "-o", temp, src], {
        stdio: ["ignore", "inherit", last ? "inherit" : "ignore"],
      });
      failure = null;
      break;
    } catch (e) {
      rmSync(temp, { force: true });
      failure = e.code === "ENOENT" ? `no C compiler (${CC})` : `${CC} failed`;
      if (e.code === "ENOENT") break;
    }
  }
  if (failure !== null) {
    warn(`could not build ${what}: ${failure}; install gcc and run 'node tools/build-native.mjs'`);
    return false;
  }
  renameSync(temp, out);
  console.error(`unionfs: built ${out.slice(REPO.length + 1)}`);
  return true;
}

/** The include/node directory of the running Node: next to it, npm's nodedir, or node-gyp's cache. */
function nodeHeaders() {
  const candidates = [
    process.env.npm_config_nodedir && join(process.env.npm_config_nodedir, "include", "node"),
    join(dirname(process.execPath), "..", "include", "node"),
    join(homedir(), ".cache", "node-gyp", process.versions.node, "include", "node"),
  ];
  return candidates.find((dir) => dir && existsSync(join(dir, "node_api.h"))) ?? null;
}

function warn(message) {
  console.error(`unionfs: warning: ${message}`);
}
