/**
 * `unionfs bench` end to end on a tiny data set: two workloads on unionfs and kernel overlayfs,
 * one round, cold and warm. The results folder gets results.json, report.md and chart.svg, and
 * nothing stays mounted or on disk afterwards. With `--upper-fs tmpfs`, every instance's upper
 * is on a tmpfs (statfs, per sample) while the lowers stay on the data set's filesystem. With
 * `--compare DIR` (here: this same checkout), `unionfs@base` runs next to `unionfs`.
 */
import { existsSync, mkdtempSync, readdirSync, readFileSync, rmSync } from "node:fs";
import { join } from "node:path";
import { fileURLToPath } from "node:url";
import { afterEach, expect, it, vi } from "vitest";
import { UserError } from "../errors.js";
import { describeAsRoot } from "../testing/root-gate.js";
import { mountsUnder } from "../testing/scratch.js";
import { benchCommand } from "./bench-command.js";

interface Sample {
  workload: string;
  mode: string;
  driver: string;
  seconds: number | null;
  upperFs: string | null;
  daemonCpuSeconds: number | null;
  requests: { total: number } | null;
  error: string | null;
}

/** Runs the command with stdout and stderr captured (the report and the progress lines). */
async function bench(argv: string[]): Promise<{ code: number; stdout: string; stderr: string }> {
  let stdout = "";
  let stderr = "";
  const out = vi.spyOn(process.stdout, "write").mockImplementation((chunk) => {
    stdout += String(chunk);
    return true;
  });
  const err = vi.spyOn(process.stderr, "write").mockImplementation((chunk) => {
    stderr += String(chunk);
    return true;
  });
  try {
    return { code: await benchCommand(argv), stdout, stderr };
  } finally {
    out.mockRestore();
    err.mockRestore();
  }
}

/** The guest kernel's free page reporting delay, on VMs that have one (bench/driver/page-reporting.mjs). */
function pageReportingMinFreeMs(): string | null {
  try {
    return readFileSync("/sys/module/page_reporting/parameters/min_free_ms", "utf8").trim();
  } catch {
    return null;
  }
}

describeAsRoot("unionfs bench", () => {
  let dir = "";
  afterEach(async () => {
    if (dir === "") return;
    const left = mountsUnder(dir);
    if (left.length === 0) rmSync(dir, { recursive: true, force: true });
    dir = "";
    expect(left).toEqual([]);
  });

  it("compares unionfs with kernel overlayfs on two workloads and writes the report", async () => {
    dir = mkdtempSync("/var/tmp/unionfs-bench-test-");
    const out = join(dir, "out");
    const data = join(dir, "data");
    const args = ["--drivers", "unionfs,overlay", "--workloads", "find-type-f,stat-all", "--runs", "1"];
    args.push("--modes", "cold,warm", "--files", "60", "--big-mib", "1", "--data", data, "--out", out, "--json");
    const reportingBefore = pageReportingMinFreeMs();
    const { code, stdout, stderr } = await bench(args);
    expect(code, stderr).toBe(0);
    // held off during the run on a VM that reports free pages to its host, and put back after
    expect(pageReportingMinFreeMs()).toBe(reportingBefore);

    const report = JSON.parse(readFileSync(join(out, "results.json"), "utf8"));
    expect(JSON.parse(stdout)).toEqual(report);
    const samples = report.samples as Sample[];
    expect(samples).toHaveLength(2 * 2 * 2);
    for (const s of samples) {
      expect(s.error, `${s.workload} ${s.mode} ${s.driver}`).toBeNull();
      expect(s.seconds).toBeGreaterThan(0);
      expect(s.daemonCpuSeconds === null).toBe(s.driver === "overlay");
    }
    // a cold lstat of every file reaches the daemon once per name (when perf can count)
    const coldStat = samples.find((s) => s.workload === "stat-all" && s.mode === "cold" && s.driver === "unionfs");
    if (coldStat?.requests != null) expect(coldStat.requests.total).toBeGreaterThanOrEqual(60);
    const row = report.summary.find((r: { workload: string; mode: string }) => r.workload === "find-type-f");
    expect(row.cells.unionfs.ratio.median).toBeGreaterThan(0);

    if (reportingBefore !== null && Number(reportingBefore) < 120_000) {
      expect(report.notes).toContainEqual(expect.stringMatching(/^free page reporting held off during the run/));
    }
    expect(readFileSync(join(out, "report.md"), "utf8")).toContain("| find -type f | cold |");
    expect(readFileSync(join(out, "chart.svg"), "utf8")).toMatch(/^<svg [^>]*>/);
    expect(existsSync(data)).toBe(false);
  });

  it("puts every driver's upper on a tmpfs of its own with --upper-fs tmpfs, and unmounts it", async () => {
    dir = mkdtempSync("/var/tmp/unionfs-bench-test-");
    const out = join(dir, "out");
    const data = join(dir, "data");
    const args = ["--upper-fs", "tmpfs", "--drivers", "unionfs,overlay,fuse-overlayfs,bare"];
    args.push("--workloads", "append-copyup,untar", "--runs", "1", "--modes", "warm");
    args.push("--files", "20", "--big-mib", "1", "--data", data, "--out", out, "--json");
    const { code, stdout, stderr } = await bench(args);
    expect(code, stderr).toBe(0);

    const report = JSON.parse(stdout);
    expect(report.config.uppers.kind).toBe("tmpfs");
    const drivers = (report.config.drivers as { name: string }[]).map((d) => d.name);
    // fuse-overlayfs only where it is installed (the harness skips it with a note otherwise)
    expect(drivers).toEqual(expect.arrayContaining(["unionfs", "overlay", "bare"]));
    const samples = report.samples as Sample[];
    expect(samples).toHaveLength(2 * drivers.length);
    for (const s of samples) {
      expect(s.error, `${s.workload} ${s.driver}`).toBeNull();
      // read by statfs on each instance's upper (bare: its writable root) while it was mounted
      expect(s.upperFs, `${s.workload} ${s.driver}`).toBe("tmpfs");
    }
    expect(readFileSync(join(out, "report.md"), "utf8")).toMatch(
      /^- Uppers: uppers and work dirs on a tmpfs mounted for the run .*; statfs of each instance's upper: tmpfs$/m,
    );
    // the tmpfs and the scratch directory are gone (afterEach checks that nothing is mounted)
    expect(mountsUnder(dir)).toEqual([]);
    expect(readdirSync(dir)).toEqual(["out"]);
  });

  it("runs another checkout's unionfs as unionfs@base with --compare, in the same rounds", async () => {
    dir = mkdtempSync("/var/tmp/unionfs-bench-test-");
    const out = join(dir, "out");
    const checkout = fileURLToPath(new URL("../..", import.meta.url));
    const args = ["--compare", checkout, "--drivers", "unionfs,overlay", "--workloads", "stat-all", "--runs", "2"];
    args.push(
      "--modes",
      "warm",
      "--files",
      "20",
      "--big-mib",
      "1",
      "--data",
      join(dir, "data"),
      "--out",
      out,
      "--json",
    );
    const { code, stdout, stderr } = await bench(args);
    expect(code, stderr).toBe(0);

    const report = JSON.parse(stdout);
    expect((report.config.drivers as { name: string }[]).map((d) => d.name)).toEqual([
      "unionfs",
      "unionfs@base",
      "overlay",
    ]);
    const base = (report.samples as (Sample & { round: number })[]).filter((s) => s.driver === "unionfs@base");
    expect(base.map((s) => s.round)).toEqual([1, 2]);
    for (const s of base) {
      expect(s.error).toBeNull();
      expect(s.seconds).toBeGreaterThan(0);
      expect(s.daemonCpuSeconds).not.toBeNull();
    }
    expect(readFileSync(join(out, "report.md"), "utf8")).toMatch(
      /^\| lstat of every file \| warm \| \d+\.\d\d( \(\d+\.\d\d–\d+\.\d\d\))?, [0-2]\/2 \|$/m,
    );
  });

  it("refuses unknown drivers, workloads and options with one line", async () => {
    await expect(bench(["--drivers", "zfs"])).rejects.toThrow(
      new UserError(
        "unknown driver 'zfs' (known: unionfs, overlay, fuse-overlayfs, bare, unionfs-volatile, overlay-volatile, unionfs-devfuse)",
      ),
    );
    await expect(bench(["--workloads", "nope", "--drivers", "bare"])).rejects.toThrow(/^unknown workload 'nope'/);
    await expect(bench(["--runs", "0"])).rejects.toThrow("--runs needs a positive integer, not '0'");
    await expect(bench(["--modes", "hot"])).rejects.toThrow("unknown mode 'hot' (cold, warm)");
    await expect(bench(["--upper-fs", "zfs"])).rejects.toThrow("unknown --upper-fs 'zfs' (data, tmpfs)");
    await expect(bench(["--compare", "/nonexistent"])).rejects.toThrow(
      "--compare /nonexistent: no dist/cli/main.js there (npm ci or npm run build in it)",
    );
  });
});
