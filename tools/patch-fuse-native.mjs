#!/usr/bin/env node
// Patches fuse-native 2.2.6 and rebuilds its addon from source (run by `npm ci` as postinstall).
//
// Why: the published glue passes atime where mtime belongs in utimens, so mtimes can never be
// set; it turns UTIME_NOW / UTIME_OMIT into garbage timestamps; it never tells the handlers
// who is calling (fuse_get_context), which a filesystem needs to give new files their owner;
// and it carries st_ino as 32 bits, where overlayfs's numbers for layers on several
// filesystems (xino) use the top bits of 64.
// The rebuilt addon lands in build/Release, which node-gyp-build prefers over the prebuilds.
// Idempotent: a patched source is recognised by its marker and only rebuilt when the build is missing.
import { execFileSync } from "node:child_process";
import { existsSync, readFileSync, writeFileSync } from "node:fs";
import { createRequire } from "node:module";
import { dirname, join } from "node:path";

const require = createRequire(import.meta.url);
const MARKER = "/* unionfs-patch v3 */";
const JS_MARKER = "// unionfs-patch v3";

/** Each edit is an exact string replacement; a missing anchor fails the install loudly. */
const C_EDITS = [
  {
    why: "expose the caller's uid/gid/pid at fixed offsets of the per-thread buffer JS receives",
    from: "typedef struct {\n  napi_ref self;\n",
    to: `${MARKER}\ntypedef struct {\n  uint32_t caller_uid;\n  uint32_t caller_gid;\n  uint32_t caller_pid;\n  uint32_t caller_umask;\n  napi_ref self;\n`,
  },
  {
    why: "record fuse_get_context() for every request before handing it to JS",
    from: "  fuse_thread_locals_t *l = get_thread_locals();\\\n  l->op = op_##name;\\\n",
    to: "  fuse_thread_locals_t *l = get_thread_locals();\\\n  {\\\n    struct fuse_context *fctx = fuse_get_context();\\\n    l->caller_uid = fctx->uid;\\\n    l->caller_gid = fctx->gid;\\\n    l->caller_pid = fctx->pid;\\\n    l->caller_umask = fctx->umask;\\\n  }\\\n  l->op = op_##name;\\\n",
  },
  {
    why: "encode UTIME_NOW / UTIME_OMIT as high word 0xffffffff, low word 0 / 1",
    from: "static uint64_t timespec_to_uint64 (const struct timespec* ts) {\n",
    to: "static uint64_t utime_to_uint64 (const struct timespec* ts) {\n  if (ts->tv_nsec == UTIME_NOW) return 0xffffffff00000000ull;\n  if (ts->tv_nsec == UTIME_OMIT) return 0xffffffff00000001ull;\n  return ((uint64_t) ts->tv_sec * 1000) + (ts->tv_nsec / 1000000);\n}\n\nstatic uint64_t timespec_to_uint64 (const struct timespec* ts) {\n",
  },
  {
    why: "utimens: encode both times with UTIME_* support",
    from: "  l->atime = timespec_to_uint64(&tv[0]);\n  l->mtime = timespec_to_uint64(&tv[1]);\n",
    to: "  l->atime = utime_to_uint64(&tv[0]);\n  l->mtime = utime_to_uint64(&tv[1]);\n",
  },
  {
    why: "utimens: pass mtime (not atime a second time) as the mtime argument",
    from: "  FUSE_UINT64_TO_INTS_ARGV(l->atime, 3)\n  FUSE_UINT64_TO_INTS_ARGV(l->atime, 5)\n",
    to: "  FUSE_UINT64_TO_INTS_ARGV(l->atime, 3)\n  FUSE_UINT64_TO_INTS_ARGV(l->mtime, 5)\n",
  },
  {
    why: "let libfuse pass a setattr that changes only one of atime/mtime (touch -m) as UTIME_OMIT; without this flag libfuse 2.9 drops such a request silently",
    from: "  struct fuse_operations ops = { };\n",
    to: "  struct fuse_operations ops = { };\n  ops.flag_utime_omit_ok = 1;\n",
  },
  {
    why: "st_ino: read the high 32 bits from a word appended after ctime",
    from: "  uint32s_to_timespec(&stat->st_ctim, &ints);\n#endif\n}\n",
    to: "  uint32s_to_timespec(&stat->st_ctim, &ints);\n#endif\n  stat->st_ino |= ((uint64_t) *ints++) << 32;\n}\n",
  },
];

const JS_EDITS = [
  {
    why: "st_ino: room for its high 32 bits after ctime",
    from: "  const ints = new Uint32Array(18)\n",
    to: `  ${JS_MARKER}\n  const ints = new Uint32Array(19)\n`,
  },
  {
    why: "st_ino: accept a bigint (or a number) and split it into two words",
    from: "  ints[7] = (stat && stat.ino) || 0\n",
    to: "  const ino = BigInt((stat && stat.ino) || 0)\n  ints[7] = Number(ino & 0xffffffffn)\n  ints[18] = Number(ino >> 32n)\n",
  },
];

const pkgDir = dirname(require.resolve("fuse-native/package.json"));
const built = join(pkgDir, "build", "Release", "fuse.node");
const version = JSON.parse(readFileSync(join(pkgDir, "package.json"), "utf8")).version;
if (version !== "2.2.6") {
  console.error(`patch-fuse-native: expected fuse-native 2.2.6, found ${version}; review the patch`);
  process.exit(1);
}

/** Applies `edits` to `file` unless its marker shows they are in; true when it changed the file. */
function patch(file, marker, edits) {
  const path = join(pkgDir, file);
  let text = readFileSync(path, "utf8");
  if (text.includes(marker)) return false;
  for (const edit of edits) {
    if (!text.includes(edit.from)) {
      console.error(`patch-fuse-native: anchor not found in ${file} (${edit.why})`);
      process.exit(1);
    }
    text = text.replace(edit.from, edit.to);
  }
  writeFileSync(path, text);
  console.log(`patch-fuse-native: patched ${file}`);
  return true;
}

const patchedC = patch("fuse-native.c", MARKER, C_EDITS);
patch("index.js", JS_MARKER, JS_EDITS);
if (!patchedC && existsSync(built)) process.exit(0);

const nodeGyp = require.resolve("node-gyp/bin/node-gyp.js");
execFileSync(process.execPath, [nodeGyp, "rebuild", "--directory", pkgDir], {
  stdio: ["ignore", "inherit", "inherit"],
});
console.log("patch-fuse-native: rebuilt", built);
