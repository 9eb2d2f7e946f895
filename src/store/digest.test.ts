import { createHash } from "node:crypto";
import { Readable, Writable } from "node:stream";
import { pipeline } from "node:stream/promises";
import { describe, expect, it } from "vitest";
import { DigestStream, parseDigest, sha256Digest } from "./digest.js";

const HEX = "a".repeat(64);

describe("parseDigest", () => {
  it("accepts sha256 with 64 lowercase hex digits", () => {
    expect(parseDigest(`sha256:${HEX}`)).toEqual({ algorithm: "sha256", hex: HEX });
  });

  it.each([
    [`sha256:${"A".repeat(64)}`, "corrupt"],
    ["sha256:abc", "corrupt"],
    ["sha256:", "corrupt"],
    [HEX, "corrupt"],
    [`sha256:${HEX}\n`, "corrupt"],
    [`sha512:${"b".repeat(128)}`, "unsupported"],
    [`md5:${"c".repeat(32)}`, "unsupported"],
  ])("refuses %j as %s", (digest, kind) => {
    expect(() => parseDigest(digest)).toThrow(expect.objectContaining({ kind }));
  });

  it("names the algorithm it refuses", () => {
    expect(() => parseDigest(`sha512:${"b".repeat(128)}`)).toThrow(
      /unsupported digest algorithm 'sha512'.*only sha256/,
    );
  });
});

describe("sha256Digest", () => {
  it("prefixes the algorithm and validates the hex", () => {
    expect(sha256Digest(HEX)).toBe(`sha256:${HEX}`);
    expect(() => sha256Digest("xyz")).toThrow(expect.objectContaining({ kind: "corrupt" }));
  });
});

describe("DigestStream", () => {
  const data = Buffer.alloc(300_000, 9);
  const expected = createHash("sha256").update(data).digest("hex");

  it("passes data through unchanged while hashing and counting it", async () => {
    const hasher = new DigestStream();
    const out: Buffer[] = [];
    const sink = new Writable({
      write(chunk: Buffer, _enc, cb) {
        out.push(chunk);
        cb();
      },
    });
    await pipeline(Readable.from([data.subarray(0, 1000), data.subarray(1000)]), hasher, sink);
    expect(Buffer.concat(out).equals(data)).toBe(true);
    expect([hasher.hex, hasher.bytes, hasher.digest]).toEqual([expected, data.length, `sha256:${expected}`]);
  });

  it("is a sink when nothing consumes it, so pipeline(source, digest) completes", async () => {
    const hasher = new DigestStream();
    await pipeline(Readable.from([data, data]), hasher);
    expect(hasher.bytes).toBe(2 * data.length);
  });

  it("reports the running byte count", async () => {
    const seen: number[] = [];
    await pipeline(
      Readable.from([data.subarray(0, 10), data.subarray(10, 30)]),
      new DigestStream({ onBytes: (n) => seen.push(n) }),
    );
    expect(seen).toEqual([10, 30]);
  });

  it("refuses to give a digest before the stream finished", () => {
    expect(() => new DigestStream().hex).toThrow(/before the stream finished/);
  });
});
