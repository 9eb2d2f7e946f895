import { constants as fsc } from "node:fs";
import { describe, expect, it } from "vitest";
import type { DirEntry } from "./dir-streams.js";
import { cookieOf, Listings } from "./listings.js";
import type { UnionNode } from "./node-table.js";

const DIR = {} as UnionNode;

function entries(names: readonly string[]): DirEntry[] {
  return [
    { name: ".", ino: 1n, mode: fsc.S_IFDIR },
    { name: "..", ino: 1n, mode: fsc.S_IFDIR },
    ...names.map((name, i) => ({ name, ino: BigInt(i + 2), mode: fsc.S_IFREG })),
  ];
}

/** Reads the whole listing `chunk` entries at a time, running `between` after each chunk. */
function readAll(listings: Listings, chunk: number, between: (seen: string[]) => void = () => {}): string[] {
  const seen: string[] = [];
  let after = 0;
  for (;;) {
    const got = listings.from(DIR, after, chunk);
    if (got.length === 0) return seen;
    for (const e of got) seen.push(e.name);
    after = got[got.length - 1]?.next ?? after;
    between(seen);
  }
}

describe("Listings", () => {
  const names = Array.from({ length: 500 }, (_, i) => `name-${i}`);

  it("gives '.' and '..' first, then every name once, in chunks resumed by the last cookie", () => {
    const listings = new Listings(() => entries(names));
    const seen = readAll(listings, 7);
    expect(seen.slice(0, 2)).toEqual([".", ".."]);
    expect([...seen.slice(2)].sort()).toEqual([...names].sort());
  });

  it("skips and repeats nothing when names read already are removed between chunks", () => {
    let present = [...names];
    const listings = new Listings(() => entries(present));
    const seen = readAll(listings, 13, (sofar) => {
      present = present.filter((n) => !sofar.includes(n));
      listings.changed();
    });
    expect([...seen.slice(2)].sort()).toEqual([...names].sort());
  });

  it("keeps a listing until something changes", () => {
    let listed = 0;
    const listings = new Listings(() => {
      listed += 1;
      return entries(names);
    });
    readAll(listings, 50);
    readAll(listings, 50);
    expect(listed).toBe(1);
    listings.changed();
    listings.from(DIR, 0, 1);
    expect(listed).toBe(2);
  });

  it("gives names cookies above those of '.' and '..', distinct for distinct names here", () => {
    const cookies = new Set(names.map(cookieOf));
    expect(cookies.size).toBe(names.length);
    expect(Math.min(...cookies)).toBeGreaterThan(2);
    expect(Math.max(...cookies)).toBeLessThanOrEqual(Number.MAX_SAFE_INTEGER);
    expect(cookieOf("\u00e9\u00ff")).toBe(cookieOf("\u00e9\u00ff"));
  });
});
