/**
 * `unionfs run` arguments → RunSpec, a plain record of what the user asked for.
 *
 *   unionfs run [--image IMG [--store DIR] | --lower L1:L2] [--upper U] [--driver fuse|overlay]
 *               [--memory 64m] [--cpus 0.5] [--pids 64] [--hostname H] [-e K=V]... [-w DIR]
 *               [--user U[:G]] [--net none|host] [--init] [--rm] [--cgroup-parent P] -- CMD ARG...
 *
 * A hand parser (a typed table of options) rather than commander: `run` is on the start-up path
 * and must load as little as possible. Options end at `--` or at the first word that is not an
 * option, which starts the command. Values go as `--opt value` or `--opt=value`.
 */
import { UserError } from "../errors.js";
import { type Limits, parseCpus, parseMemory, parsePids } from "./limits.js";

export type Driver = "fuse" | "overlay";
export type NetMode = "none" | "host";

export type RootSource = { kind: "lowers"; lowers: string[] } | { kind: "image"; image: string; store?: string };

export interface RunSpec {
  source: RootSource;
  /** the writable layer; a temporary one (removed afterwards) when absent */
  upper?: string;
  driver: Driver;
  limits: Limits;
  hostname?: string;
  /** -e entries in the order given: K=V, or K to pass the host's value on */
  env: string[];
  cwd?: string;
  user?: string;
  net: NetMode;
  /** remove --upper (and its work dir) after the run */
  rm: boolean;
  /** run a reaping, signal-forwarding init as PID 1 */
  init: boolean;
  /** cgroup parent, relative to each hierarchy's root (default: see cgroup-layout.ts) */
  cgroupParent?: string;
  /** empty only with --image, whose config then supplies it */
  command: string[];
}

export const RUN_USAGE = `usage: unionfs run [OPTIONS] -- COMMAND [ARG...]

Runs COMMAND with a union of layers as its root, in new mount, pid, uts, ipc and net namespaces.

  --lower L1:L2...      lower layers, leftmost on top (\\: escapes a colon)
  --image IMAGE         the layers of an image in the layer store (its config gives defaults)
  --store DIR           layer store directory
  --upper DIR           writable layer (default: a temporary one, removed afterwards)
  --driver fuse|overlay the union: unionfs over FUSE (default) or kernel overlayfs
  --memory SIZE         memory limit, swap included (e.g. 64m, 1g)
  --cpus N              CPU quota in CPUs (e.g. 0.5)
  --pids N              maximum number of processes
  --hostname NAME       host name inside (default: the run's id)
  -e, --env K=V         set an environment variable (K alone passes the host's value)
  -w, --workdir DIR     working directory inside (absolute)
  -u, --user U[:G]      user and group, as ids or names from the image's /etc files
  --net none|host       none: a private network namespace with only lo (default); host: share it
  --init                run an init as PID 1 that reaps zombies and forwards signals
  --rm                  remove the --upper directory and its work dir afterwards
  --cgroup-parent PATH  create the run's cgroup below PATH in each hierarchy
`;

type Setter = (spec: Draft, value: string) => void;

interface OptionDef {
  names: readonly string[];
  /** flags take no value */
  flag?: (spec: Draft) => void;
  set?: Setter;
}

interface Draft extends Omit<RunSpec, "source" | "command"> {
  lower?: string;
  image?: string;
  store?: string;
  help: boolean;
}

const HOSTNAME = /^[A-Za-z0-9]([A-Za-z0-9.-]{0,62})$/;
const USER = /^[A-Za-z0-9_.][A-Za-z0-9_.-]*(:[A-Za-z0-9_.][A-Za-z0-9_.-]*)?$/;
const ENV_KEY = /^[^=\0]+$/;

const OPTIONS: readonly OptionDef[] = [
  { names: ["--lower"], set: (s, v) => (s.lower = v) },
  { names: ["--image"], set: (s, v) => (s.image = v) },
  { names: ["--store"], set: (s, v) => (s.store = v) },
  { names: ["--upper"], set: (s, v) => (s.upper = v) },
  { names: ["--driver"], set: (s, v) => (s.driver = oneOf(v, ["fuse", "overlay"] as const, "--driver")) },
  { names: ["--memory", "-m"], set: (s, v) => (s.limits.memoryBytes = parseMemory(v)) },
  { names: ["--cpus"], set: (s, v) => (s.limits.cpus = parseCpus(v)) },
  { names: ["--pids", "--pids-limit"], set: (s, v) => (s.limits.pids = parsePids(v)) },
  { names: ["--hostname"], set: (s, v) => (s.hostname = checkHostname(v)) },
  { names: ["--env", "-e"], set: (s, v) => s.env.push(checkEnv(v)) },
  { names: ["--workdir", "-w"], set: (s, v) => (s.cwd = checkAbsolute(v, "--workdir")) },
  { names: ["--user", "-u"], set: (s, v) => (s.user = checkUser(v)) },
  { names: ["--net", "--network"], set: (s, v) => (s.net = oneOf(v, ["none", "host"] as const, "--net")) },
  { names: ["--cgroup-parent"], set: (s, v) => (s.cgroupParent = checkAbsolute(v, "--cgroup-parent")) },
  { names: ["--init"], flag: (s) => (s.init = true) },
  { names: ["--rm"], flag: (s) => (s.rm = true) },
  { names: ["--help", "-h"], flag: (s) => (s.help = true) },
];

const BY_NAME = new Map(OPTIONS.flatMap((o) => o.names.map((n) => [n, o] as const)));

/** Parses the arguments after `run`; null when help was asked for. */
export function parseRunArgs(argv: readonly string[]): RunSpec | null {
  const draft: Draft = { driver: "fuse", limits: {}, env: [], net: "none", rm: false, init: false, help: false };
  let i = 0;
  for (; i < argv.length; i++) {
    const arg = argv[i] as string;
    if (arg === "--") {
      i++;
      break;
    }
    if (!arg.startsWith("-") || arg === "-") break;
    const eq = arg.startsWith("--") ? arg.indexOf("=") : -1;
    const name = eq > 0 ? arg.slice(0, eq) : arg;
    const def = BY_NAME.get(name);
    if (def === undefined) throw new UserError(`run: unknown option ${name} (see unionfs run --help)`);
    if (def.flag !== undefined) {
      if (eq > 0) throw new UserError(`run: ${name} takes no value`);
      def.flag(draft);
      continue;
    }
    let value: string | undefined;
    if (eq > 0) value = arg.slice(eq + 1);
    else value = argv[++i];
    if (value === undefined) throw new UserError(`run: ${name} needs a value`);
    def.set?.(draft, value);
  }
  if (draft.help) return null;
  const command = argv.slice(i);
  const { lower, image, store, help: _help, ...rest } = draft;
  let source: RootSource;
  if (lower !== undefined && image !== undefined) throw new UserError("run: --lower and --image exclude each other");
  if (lower !== undefined) {
    if (store !== undefined) throw new UserError("run: --store goes with --image");
    source = { kind: "lowers", lowers: splitLowerList(lower) };
  } else if (image !== undefined) {
    source = store === undefined ? { kind: "image", image } : { kind: "image", image, store };
  } else {
    throw new UserError("run: say what to run on: --lower L1:L2... or --image IMAGE");
  }
  if (command.length === 0 && source.kind === "lowers") throw new UserError("run: no command given (after --)");
  return { ...rest, source, command };
}

/** Splits a lower list on unescaped colons (`\:` is a colon inside a path, `\\` a backslash). */
export function splitLowerList(list: string): string[] {
  const parts: string[] = [];
  let current = "";
  for (let i = 0; i < list.length; i++) {
    const ch = list[i] as string;
    const next = list[i + 1];
    if (ch === "\\" && (next === ":" || next === "\\")) {
      current += next;
      i++;
    } else if (ch === ":") {
      parts.push(current);
      current = "";
    } else {
      current += ch;
    }
  }
  parts.push(current);
  if (parts.some((p) => p.length === 0)) throw new UserError(`run: empty directory in lower list '${list}'`);
  return parts;
}

function oneOf<T extends string>(value: string, allowed: readonly T[], option: string): T {
  if ((allowed as readonly string[]).includes(value)) return value as T;
  throw new UserError(`run: ${option} must be one of ${allowed.join(", ")}, not '${value}'`);
}

function checkHostname(value: string): string {
  if (!HOSTNAME.test(value)) throw new UserError(`run: '${value}' is not a valid host name`);
  return value;
}

function checkEnv(value: string): string {
  const key = value.split("=", 1)[0] ?? "";
  if (!ENV_KEY.test(key) || value.includes("\0")) throw new UserError(`run: bad environment entry '${value}'`);
  return value;
}

function checkAbsolute(value: string, option: string): string {
  if (!value.startsWith("/") || value.includes("\0")) throw new UserError(`run: ${option} needs an absolute path`);
  return value;
}

function checkUser(value: string): string {
  if (!USER.test(value)) throw new UserError(`run: --user takes UID[:GID] or NAME[:GROUP], not '${value}'`);
  return value;
}
