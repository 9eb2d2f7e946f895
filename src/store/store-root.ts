/**
 * Where the layer store lives: `--store DIR`, else $UNIONFS_STORE, else /var/lib/unionfs for
 * root and $XDG_DATA_HOME/unionfs (~/.local/share/unionfs) for everyone else.
 */
import { homedir } from "node:os";
import { join, resolve } from "node:path";
import { isRootUser } from "../sys/privilege.js";

export function storeRoot(flag?: string): string {
  if (flag !== undefined && flag.length > 0) return resolve(flag);
  const fromEnv = process.env.UNIONFS_STORE;
  if (fromEnv !== undefined && fromEnv.length > 0) return resolve(fromEnv);
  if (isRootUser()) return "/var/lib/unionfs";
  const data = process.env.XDG_DATA_HOME;
  return join(data !== undefined && data.length > 0 ? data : join(homedir(), ".local/share"), "unionfs");
}
