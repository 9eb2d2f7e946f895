/**
 * ChainIDs as the OCI image spec defines them: the identity of a layer *stack*, since a diff
 * means something only on top of its parents.
 *   ChainID(L0) = DiffID(L0);  ChainID(L0..Ln) = sha256(ChainID(L0..Ln-1) + " " + DiffID(Ln))
 */
import { createHash } from "node:crypto";

export function chainIds(diffIds: readonly string[]): string[] {
  const out: string[] = [];
  for (const diffId of diffIds) {
    const parent = out[out.length - 1];
    out.push(
      parent === undefined ? diffId : `sha256:${createHash("sha256").update(`${parent} ${diffId}`).digest("hex")}`,
    );
  }
  return out;
}

export function chainId(diffIds: readonly string[]): string | null {
  return chainIds(diffIds).at(-1) ?? null;
}
