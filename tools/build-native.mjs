#!/usr/bin/env node
// Builds the native helper of `unionfs run` (native/unionfs-run.c -> native/build/unionfs-run)
// with the C compiler alone: no node-gyp, no headers beyond libc's and the kernel's.
// Runs at `npm ci` (postinstall) and is cheap to re-run: it rebuilds only when the source is
// newer than the binary. Without a compiler it warns and exits 0, so the rest of unionfs
// installs; `unionfs run` then says how to build the helper.
//
// usage: node tools/build-native.mjs [--force]
import { execFileSync } from "node:child_process";
import { existsSync, mkdirSync, renameSync, rmSync, statSync } from "node:fs";
import { dirname, join } from "node:path";
import { fileURLToPath } from "node:url";

const REPO = join(dirname(fileURLToPath(import.meta.url)), "..");
const SOURCE = join(REPO, "native", "unionfs-run.c");
const OUTPUT = join(REPO, "native", "build", "unionfs-run");
const CC = process.env.CC ?? "cc";
const FLAGS = ["-std=gnu11", "-O2", "-Wall", "-Wextra", "-Werror", "-D_FORTIFY_SOURCE=2", "-fstack-protector-strong"];

const force = process.argv.includes("--force");
if (!force && existsSync(OUTPUT) && statSync(OUTPUT).mtimeMs >= statSync(SOURCE).mtimeMs) process.exit(0);

mkdirSync(dirname(OUTPUT), { recursive: true });
const temp = `${OUTPUT}.tmp-${process.pid}`;
try {
  execFileSync(CC, [...FLAGS, "-o", temp, SOURCE], { stdio: ["ignore", "inherit", "inherit"] });
} catch (e) {
  rmSync(temp, { force: true });
  const reason = e.code === "ENOENT" ? `no C compiler (${CC})` : `${CC} failed`;
  console.error(
    `unionfs: warning: could not build the native helper of 'unionfs run': ${reason}; ` +
      "install gcc and run 'node tools/build-native.mjs'",
  );
  process.exit(0);
}
renameSync(temp, OUTPUT);
console.error(`unionfs: built ${OUTPUT.slice(REPO.length + 1)}`);
