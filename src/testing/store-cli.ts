/**
 * The built CLI against one layer store, for end-to-end store tests: every command gets
 * `--store DIR` and the test's private runtime dir, and mounts made from the store are
 * registered with the test's Scratch, so they are unmounted in afterEach whatever happens.
 */
import { existsSync, readdirSync, statSync } from "node:fs";
import { readdir } from "node:fs/promises";
import { join } from "node:path";
import { CLI_MAIN, type Running, type RunOptions, type RunResult, runCli, startCli } from "./cli-run.js";
import { mountsUnder, type Scratch } from "./scratch.js";
import { defaultTransport, transportArgs } from "./transports.js";

export class StoreCli {
  constructor(
    readonly scratch: Scratch,
    /** the store directory */
    readonly root: string,
  ) {}

  private opts(extra: RunOptions = {}): RunOptions {
    return {
      timeoutMs: 30_000,
      ...extra,
      env: {
        UNIONFS_RUNTIME_DIR: this.scratch.runtimeDir,
        UNIONFS_LOG: this.scratch.path("unionfs.log"),
        ...extra.env,
      },
    };
  }

  /** `unionfs ARGS --store ROOT`, whatever its exit code. */
  run(args: readonly string[], extra?: RunOptions): Promise<RunResult> {
    return runCli([...args, "--store", this.root], this.opts(extra));
  }

  start(args: readonly string[], extra?: RunOptions): Running {
    return startCli([...args, "--store", this.root], this.opts(extra));
  }

  /** Runs a command that must succeed; its stdout. */
  async ok(args: readonly string[], extra?: RunOptions): Promise<string> {
    const r = await this.run(args, extra);
    if (r.code !== 0) {
      throw new Error(`unionfs ${args.join(" ")} exited ${r.code ?? r.signal}: ${r.stderr.trim()}`);
    }
    return r.stdout;
  }

  async json<T>(args: readonly string[]): Promise<T> {
    return JSON.parse(await this.ok(args)) as T;
  }

  /** DiffIDs of an image, bottom first. */
  async imageLayers(name: string): Promise<string[]> {
    return (await this.json<{ layers: string[] }>(["image", "inspect", name])).layers;
  }

  /** The DiffIDs `layer ls --json` lists. */
  async layerIds(): Promise<string[]> {
    return (await this.json<{ diffId: string }[]>(["layer", "ls", "--json"])).map((l) => l.diffId);
  }

  /** Where the store keeps a layer's extracted content. */
  diffDir(diffId: string): string {
    return join(this.root, "layers/sha256", diffId.replace(/^sha256:/, ""), "diff");
  }

  /** Entries of the store's staging dir. */
  tmpEntries(): string[] {
    return existsSync(join(this.root, "tmp")) ? readdirSync(join(this.root, "tmp")) : [];
  }

  /** Entries of layers/sha256/, images/ and containers/: equal lists mean an unchanged store. */
  async contents(): Promise<string[]> {
    const out: string[] = [];
    for (const dir of ["layers/sha256", "images", "containers"]) {
      if (!existsSync(join(this.root, dir))) continue;
      for (const name of await readdir(join(this.root, dir))) out.push(`${dir}/${name}`);
    }
    return out.sort();
  }

  /**
   * `unionfs mount --image NAME MNT` or `--container NAME`, with the run's first transport;
   * returns the unmount (also run at the test's cleanup if the test did not).
   */
  async mount(kind: "--image" | "--container", name: string, mountpoint: string): Promise<() => Promise<void>> {
    let done = false;
    const unmount = async () => {
      if (done) return;
      done = true;
      if (!mountsUnder(mountpoint).includes(mountpoint)) return;
      const r = await runCli(["umount", mountpoint], this.opts());
      if (r.code !== 0) throw new Error(`unionfs umount ${mountpoint} exited ${r.code}: ${r.stderr.trim()}`);
    };
    this.scratch.onCleanup(unmount);
    await this.ok(["mount", ...transportArgs(defaultTransport()), kind, name, mountpoint]);
    if (!mountsUnder(mountpoint).includes(mountpoint))
      throw new Error(`unionfs mount exited 0, ${mountpoint} is not mounted`);
    return unmount;
  }
}

/** The directories of src/ whose code the store tests run through dist/. */
const SOURCES = ["cli", "store", "fuse", "union", "format", "path", "sys"];

/** Throws unless dist/ was built after every source file the store tests exercise. */
export function requireFreshBuild(): void {
  const src = join(CLI_MAIN, "../../../src");
  if (!existsSync(CLI_MAIN)) throw new Error(`${CLI_MAIN} is missing: run 'npm run build' first`);
  for (const top of SOURCES) {
    for (const rel of readdirSync(join(src, top), { recursive: true }) as string[]) {
      if (!rel.endsWith(".ts") || /\.(test|d)\.ts$/.test(rel)) continue;
      const built = join(src, "../dist", top, rel.replace(/\.ts$/, ".js"));
      if (!existsSync(built) || statSync(built).mtimeMs < statSync(join(src, top, rel)).mtimeMs) {
        throw new Error(`dist/ is older than src/${top}/${rel}: run 'npm run build' first`);
      }
    }
  }
}
