// @ts-check
/** What the results were measured on: CPU, memory, kernel, distribution, filesystem, versions. */
import { readFileSync } from "node:fs";
import { cpus, totalmem } from "node:os";
import { runCommand } from "./proc.mjs";

async function output(/** @type {string[]} */ argv) {
  try {
    const res = await runCommand({ argv, captureStdout: true }, 10_000);
    return res.code === 0 ? res.stdout.trim() : null;
  } catch {
    return null;
  }
}

function cpuInfo() {
  const text = readFileSync("/proc/cpuinfo", "utf8");
  const field = (/** @type {string} */ name) =>
    text.match(new RegExp(`^${name}\\s*:\\s*(.*)$`, "m"))?.[1]?.trim() ?? null;
  return {
    model: field("model name"),
    mhz: Number(field("cpu MHz")) || null,
    cores: cpus().length,
    virtualized: /^flags\s*:.*\bhypervisor\b/m.test(text),
  };
}

function osName() {
  try {
    return readFileSync("/etc/os-release", "utf8").match(/^PRETTY_NAME="?([^"\n]*)"?$/m)?.[1] ?? null;
  } catch {
    return null;
  }
}

export async function describeMachine(/** @type {string} */ dataDir) {
  const dpkg = await output([
    "dpkg-query",
    "-W",
    "-f",
    // biome-ignore lint/suspicious/noTemplateCurlyInString: dpkg-query format
    "${Package} ${Version}\\n",
    "libfuse2",
    "fuse3",
    "fuse-overlayfs",
  ]);
  return {
    cpu: cpuInfo(),
    memoryGiB: Math.round((totalmem() / 2 ** 30) * 10) / 10,
    kernel: (await output(["uname", "-r"])) ?? "unknown",
    os: osName(),
    node: process.version,
    filesystem: await output(["findmnt", "-n", "-o", "FSTYPE,SOURCE,OPTIONS", "-T", dataDir]),
    packages: dpkg === null ? [] : dpkg.split("\n"),
  };
}

/** One line for a report header. */
export function machineLine(/** @type {Awaited<ReturnType<typeof describeMachine>>} */ m) {
  const cpu = `${m.cpu.model ?? "unknown CPU"}${m.cpu.mhz ? ` @ ${(m.cpu.mhz / 1000).toFixed(2)} GHz` : ""}, ${m.cpu.cores} cores`;
  const fs = m.filesystem === null ? "" : `; data on ${m.filesystem.split(/\s+/).slice(0, 2).join(" ")}`;
  return `${cpu}${m.cpu.virtualized ? " (virtual machine)" : ""}; ${m.memoryGiB} GiB RAM; Linux ${m.kernel}; ${m.os ?? "unknown OS"}; Node ${m.node}${fs}`;
}
