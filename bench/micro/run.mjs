// @ts-check
/**
 * The micro benchmarks of src/union and src/store hot paths (benny), driven through the built
 * modules in dist/ without any mount:
 *
 *   npm run bench -- micro [--suites lookup,readdir,probe,unpack] [--quick]
 *
 * Each suite saves its benny JSON (with per-sample times) to bench/micro/saved/<suite>.json;
 * summary.md there is one table per suite, rebuilt from the saved files after every run, so a
 * run of some suites keeps the others' last figures.
 */
import { existsSync, readFileSync, writeFileSync } from "node:fs";
import { cpus, totalmem } from "node:os";
import { join } from "node:path";
import { fileURLToPath } from "node:url";
import b from "benny";
import { lookupSuite } from "./lookup.mjs";
import { probeSuite } from "./probe.mjs";
import { readdirSuite } from "./readdir.mjs";
import { unpackSuite } from "./unpack.mjs";

const SAVED = fileURLToPath(new URL("./saved/", import.meta.url));
const SUITES = ["lookup", "readdir", "probe", "unpack"];

function usageError(/** @type {string} */ message) {
  return Object.assign(new Error(message), { name: "UserError" });
}

/** @param {string[]} argv */
export async function runMicro(argv) {
  let suites = SUITES;
  let quick = false;
  for (let i = 0; i < argv.length; i++) {
    if (argv[i] === "--suites") suites = (argv[++i] ?? "").split(",").filter((s) => s.length > 0);
    else if (argv[i] === "--quick") quick = true;
    else throw usageError(`unknown option ${argv[i]} (--suites ${SUITES.join(",")}, --quick)`);
  }
  for (const s of suites) if (!SUITES.includes(s)) throw usageError(`unknown suite ${s}`);
  const caseOptions = quick ? { maxTime: 0.3, minSamples: 3 } : { maxTime: 3, minSamples: 10 };
  const slowCaseOptions = quick
    ? { maxTime: 0.5, minSamples: 1, initCount: 1 }
    : { maxTime: 20, minSamples: 5, initCount: 1 };
  // --quick is a smoke run: its numbers are not worth keeping
  const save = (/** @type {string} */ file) =>
    quick ? [] : [b.save({ file, folder: SAVED, format: "json", details: true })];
  const entries = quick ? 1000 : 10_000;
  if (suites.includes("lookup")) await lookupSuite({ depths: quick ? [1, 4] : [1, 4, 16], caseOptions, save });
  if (suites.includes("readdir")) await readdirSuite({ entries, caseOptions, slowCaseOptions, save });
  if (suites.includes("probe")) await probeSuite({ caseOptions, save });
  if (suites.includes("unpack")) await unpackSuite({ entries, slowCaseOptions, save });
  if (quick) return 0;
  const saved = SUITES.map((s) => join(SAVED, `${s}.json`)).filter((f) => existsSync(f));
  writeFileSync(join(SAVED, "summary.md"), summary(saved.map((f) => JSON.parse(readFileSync(f, "utf8")))));
  return 0;
}

function micros(/** @type {number} */ seconds) {
  const v = seconds * 1e6;
  return v >= 100 ? Math.round(v).toLocaleString("en-US") : v.toFixed(1);
}

/** @param {any[]} results benny's saved JSON, with details */
function summary(results) {
  const cpu = readFileSync("/proc/cpuinfo", "utf8").match(/^model name\s*:\s*(.*)$/m)?.[1] ?? "unknown CPU";
  const lines = [
    "# Micro benchmarks (benny)",
    "",
    `${cpu}, ${cpus().length} cores, ${Math.round(totalmem() / 2 ** 30)} GiB; Node ${process.version}`,
    "",
  ];
  for (const r of results) {
    lines.push(`## ${r.name}`, "", `Run ${r.date}.`, "");
    lines.push("| case | median µs/op | mean µs/op | ± (rme) | samples |", "|---|---:|---:|---:|---:|");
    for (const c of r.results) {
      lines.push(
        `| ${c.name} | ${micros(c.details.median)} | ${micros(c.details.mean)} | ${c.margin}% | ${c.samples} |`,
      );
    }
    lines.push("");
  }
  return `${lines.join("\n")}\n`;
}
