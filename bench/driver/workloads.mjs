// @ts-check
/**
 * The workloads of issue 6, each one command run against a driver instance's root. A workload
 * names the data-set parts it reads (`uses`), the ones it changes (`mutates`: it cannot run
 * twice on one instance, so its warm run gets a fresh instance after the untimed one), and
 * whether it creates new files (`writes`: each run writes under its own name, so the untimed
 * and the timed run do identical work on one instance).
 *
 * Programs are the ones a Debian machine has (find, tar, dd, rm, chmod, git, python3); output
 * goes to /dev/null except where it is checked.
 */
import { existsSync } from "node:fs";
import { join } from "node:path";
import { which } from "./proc.mjs";

const PYTHON = existsSync("/usr/bin/python3") ? "/usr/bin/python3" : (which("python3") ?? "/usr/bin/python3");

/**
 * @typedef {object} WorkloadContext
 * @property {string} root      the instance's root (mount point or bare directory)
 * @property {string} dataDir   the data set directory (untar.tar, lists/, py-modules.txt)
 * @property {number} bigMiB
 * @property {string} tag       unique per run on one instance
 * @property {string} home      an empty HOME for git
 */

/**
 * @typedef {object} Workload
 * @property {string} id
 * @property {string} title
 * @property {readonly import("../../tools/make-dataset.mjs").Part[]} uses
 * @property {readonly string[]} mutates
 * @property {boolean} writes
 * @property {string[]} needs   programs that must be installed
 * @property {(ctx: WorkloadContext) => import("./proc.mjs").CommandSpec} command
 * @property {(stdout: string) => string | null} [check]  an error message when the output is wrong
 */

const LSTAT_ALL = existsSync(PYTHON)
  ? [
      PYTHON,
      "-S",
      "-E",
      "-c",
      "import os, sys\nr = os.fsencode(sys.argv[1])\nfor p in open(sys.argv[2], 'rb').read().split(b'\\0'): os.lstat(r + b'/' + p)",
    ]
  : [
      process.execPath,
      "-e",
      "const fs = require('node:fs'); const [r, l] = process.argv.slice(1); for (const p of fs.readFileSync(l, 'latin1').split('\\0')) fs.lstatSync(r + '/' + p)",
    ];

const sh = (/** @type {string} */ script, /** @type {string[]} */ ...args) => ["/bin/sh", "-c", script, "sh", ...args];

/**
 * `dd` of the big file's size from /dev/zero into a new file, synced at the end.
 * @param {string} id
 * @param {string} label  the block size as the title shows it
 * @param {string} bs     dd's block size
 * @param {number} perMiB blocks per MiB
 * @returns {Workload}
 */
function sequentialWrite(id, label, bs, perMiB) {
  return {
    id,
    title: `sequential write, ${label} blocks`,
    uses: [],
    mutates: [],
    writes: true,
    needs: ["dd"],
    command: (c) => ({
      argv: [
        "dd",
        "if=/dev/zero",
        `of=${join(c.root, `${id}-${c.tag}`)}`,
        `bs=${bs}`,
        `count=${c.bigMiB * perMiB}`,
        "conv=fsync",
        "status=none",
      ],
    }),
  };
}

/** @type {Workload[]} */
export const WORKLOADS = [
  {
    id: "find-type-f",
    title: "find -type f",
    uses: ["tree"],
    mutates: [],
    writes: false,
    needs: ["find"],
    command: (c) => ({ argv: ["find", join(c.root, "tree"), "-type", "f"] }),
  },
  {
    id: "find-printf-size",
    title: "find -printf %s",
    uses: ["tree"],
    mutates: [],
    writes: false,
    needs: ["find"],
    command: (c) => ({ argv: ["find", join(c.root, "tree"), "-printf", "%s\\n"] }),
  },
  {
    id: "stat-all",
    title: "lstat of every file",
    uses: ["tree"],
    mutates: [],
    writes: false,
    needs: [],
    // python starts in ~10 ms, Node in ~40: python when there is one, so startup weighs less
    command: (c) => ({
      argv: [...LSTAT_ALL, c.root, join(c.dataDir, "lists", "tree.txt")],
    }),
  },
  {
    id: "cat-big",
    title: "cat of the big file",
    uses: ["big"],
    mutates: [],
    writes: false,
    needs: ["cat"],
    command: (c) => ({ argv: ["cat", join(c.root, "big", "big.bin")] }),
  },
  {
    id: "tar-tree",
    title: "tar of the small files to /dev/null",
    uses: ["tree"],
    mutates: [],
    writes: false,
    needs: ["tar"],
    // through a pipe: GNU tar skips reading file data when its archive is /dev/null itself
    command: (c) => ({ argv: sh('tar -cf - -C "$1" tree | cat >/dev/null', c.root) }),
  },
  sequentialWrite("write-1m", "1 MiB", "1M", 1),
  sequentialWrite("write-4k", "4 KiB", "4k", 256),
  {
    id: "untar",
    title: "untar of the small files into the mount",
    uses: ["untar"],
    mutates: [],
    writes: true,
    needs: ["tar"],
    command: (c) => ({
      argv: sh('mkdir "$1" && tar -xf "$2" -C "$1"', join(c.root, `untar-${c.tag}`), join(c.dataDir, "untar.tar")),
    }),
  },
  {
    id: "rm-rf",
    title: "rm -rf of a lower directory",
    uses: ["rmdir"],
    mutates: ["rmdir"],
    writes: false,
    needs: ["rm"],
    command: (c) => ({ argv: ["rm", "-rf", join(c.root, "rmdir")] }),
  },
  {
    id: "append-copyup",
    title: "copy-up: append 1 byte to the big lower file",
    uses: ["big"],
    mutates: ["big"],
    writes: false,
    needs: [],
    command: (c) => ({ argv: sh('printf x >>"$1"', join(c.root, "big", "big.bin")) }),
  },
  {
    id: "chmod-copyup",
    title: "chmod of the big lower file",
    uses: ["big"],
    mutates: ["big"],
    writes: false,
    needs: ["chmod"],
    command: (c) => ({ argv: ["chmod", "0600", join(c.root, "big", "big.bin")] }),
  },
  {
    id: "git-status",
    title: "git status of a checkout in a lower layer",
    uses: ["repo"],
    mutates: [],
    writes: false,
    needs: ["git"],
    command: (c) => ({
      argv: ["git", "-C", join(c.root, "repo"), "status", "--porcelain"],
      env: { HOME: c.home, GIT_CONFIG_NOSYSTEM: "1" },
      captureStdout: true,
    }),
    check: (out) => (out.trim() === "" ? null : `git status is not clean: ${out.trim().split("\n")[0]}`),
  },
  {
    id: "py-import",
    title: "python imports from the mount",
    uses: ["pylib"],
    mutates: [],
    writes: false,
    needs: [PYTHON],
    command: (c) => ({
      argv: [
        PYTHON,
        "-S",
        "-E",
        "-B",
        "-W",
        "ignore",
        "-c",
        "import sys, importlib\nsys.path.insert(0, sys.argv[1])\nfor n in open(sys.argv[2]).read().split(): importlib.import_module(n)",
        join(c.root, "pylib"),
        join(c.dataDir, "py-modules.txt"),
      ],
    }),
  },
];

/** Why a workload cannot run here, or null. */
export function workloadUnavailable(/** @type {Workload} */ w) {
  for (const program of w.needs) {
    if (program.startsWith("/") ? !existsSync(program) : which(program) === null) return `${program} is not installed`;
  }
  return null;
}
