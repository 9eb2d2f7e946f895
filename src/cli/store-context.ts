/**
 * What every store command shares: finding and opening the store, holding its lock, progress
 * lines on a terminal, and printing listings as a table or as JSON.
 */
import { LayerStore } from "../store/layer-store.js";
import { storeRoot } from "../store/store-root.js";

export interface StoreFlags {
  store?: string;
}

export async function openStore(flags: StoreFlags): Promise<LayerStore> {
  return LayerStore.open(storeRoot(flags.store));
}

/** Opens the store and runs `fn` under its lock, saying so if another command holds it. */
export async function withStore<T>(flags: StoreFlags, fn: (store: LayerStore) => Promise<T>): Promise<T> {
  const store = await openStore(flags);
  return store.locked(
    () => fn(store),
    () => process.stderr.write("unionfs: waiting for another unionfs to release the store lock\n"),
  );
}

/** Progress for long operations, shown only when stderr is a terminal. */
export function progress(message: string): void {
  if (process.stderr.isTTY) process.stderr.write(`${message}\n`);
}

export function printJson(value: unknown): void {
  process.stdout.write(`${JSON.stringify(value, null, 2)}\n`);
}

/** Left-aligned columns separated by three spaces, like docker's listings. */
export function printTable(header: readonly string[], rows: readonly (readonly string[])[]): void {
  const widths = header.map((h, i) => Math.max(h.length, ...rows.map((r) => (r[i] ?? "").length)));
  const line = (cells: readonly string[]) =>
    cells
      .map((c, i) => (i === cells.length - 1 ? c : c.padEnd(widths[i] ?? 0)))
      .join("   ")
      .trimEnd();
  process.stdout.write(`${[line(header), ...rows.map(line)].join("\n")}\n`);
}

export function shortDigest(digest: string): string {
  return digest.replace(/^sha256:/, "").slice(0, 12);
}

export function humanSize(bytes: number): string {
  const units = ["B", "kB", "MB", "GB", "TB"];
  let value = bytes;
  let unit = 0;
  while (value >= 1000 && unit < units.length - 1) {
    value /= 1000;
    unit++;
  }
  return `${unit === 0 ? value : value.toFixed(value < 10 ? 2 : 1)}${units[unit]}`;
}
