import { spawnSync } from "node:child_process";
import { Readable } from "node:stream";
import { gzipSync } from "node:zlib";
import { afterEach, describe, expect, it } from "vitest";
import { decompress, sniffCompression } from "./decompress.js";

const payload = Buffer.from(`${"x".repeat(100_000)}end`);

async function readAll(stream: Readable): Promise<Buffer> {
  const chunks: Buffer[] = [];
  for await (const chunk of stream) chunks.push(chunk as Buffer);
  return Buffer.concat(chunks);
}

function from(...chunks: Buffer[]): Readable {
  return Readable.from(chunks);
}

function zstd(data: Buffer): Buffer {
  return spawnSync("zstd", ["-q", "-c"], { input: data }).stdout;
}

/** zstd processes this test process started that are still running. */
function zstdChildren(): string[] {
  const r = spawnSync("pgrep", ["-P", String(process.pid), "zstd"], { encoding: "utf8" });
  return r.stdout.split("\n").filter((l) => l !== "");
}

describe("sniffCompression", () => {
  it("knows gzip and zstd by their magic and everything else as none", () => {
    expect(sniffCompression(Buffer.from([0x1f, 0x8b, 8, 0]))).toBe("gzip");
    expect(sniffCompression(Buffer.from([0x28, 0xb5, 0x2f, 0xfd]))).toBe("zstd");
    expect(sniffCompression(Buffer.from("ustar"))).toBe("none");
    expect(sniffCompression(Buffer.alloc(0))).toBe("none");
  });
});

describe("decompress", () => {
  const savedPath = process.env.PATH;
  afterEach(() => {
    process.env.PATH = savedPath;
  });

  it("passes plain data through, even when the magic is split across chunks or shorter than it", async () => {
    expect((await readAll(decompress(from(payload.subarray(0, 1), payload.subarray(1))))).equals(payload)).toBe(true);
    expect((await readAll(decompress(from(Buffer.from("ab"))))).toString()).toBe("ab");
    expect((await readAll(decompress(from()))).length).toBe(0);
  });

  it("gunzips, including concatenated members and a magic split across chunks", async () => {
    const gz = Buffer.concat([gzipSync(payload), gzipSync(Buffer.from("tail"))]);
    const out = await readAll(decompress(from(gz.subarray(0, 1), gz.subarray(1, 3), gz.subarray(3))));
    expect(out.toString()).toBe(`${payload.toString()}tail`);
  });

  it("decodes zstd with the zstd program", async () => {
    expect((await readAll(decompress(from(zstd(payload))))).equals(payload)).toBe(true);
  });

  it("says how to get zstd when the program is missing", async () => {
    const zs = zstd(payload);
    process.env.PATH = "/nonexistent";
    await expect(readAll(decompress(from(zs)))).rejects.toMatchObject({
      kind: "unsupported",
      message: "zstd-compressed layer but the zstd program is not installed (apt-get install zstd)",
    });
  });

  it("reports corrupt and truncated streams as corrupt", async () => {
    const gz = gzipSync(payload);
    await expect(readAll(decompress(from(gz.subarray(0, gz.length - 8))))).rejects.toMatchObject({
      kind: "corrupt",
      message: "corrupt gzip stream: unexpected end of file",
    });
    const zs = zstd(payload);
    const bad = Buffer.concat([zs.subarray(0, 4), Buffer.alloc(64, 0xff)]);
    await expect(readAll(decompress(from(bad)))).rejects.toMatchObject({
      kind: "corrupt",
      message: expect.stringContaining("corrupt zstd stream"),
    });
  });

  it("passes the input's own error through", async () => {
    const failing = Readable.from(
      (async function* () {
        yield gzipSync(payload).subarray(0, 100);
        throw Object.assign(new Error("boom"), { code: "EIO" });
      })(),
    );
    await expect(readAll(decompress(failing))).rejects.toMatchObject({ code: "EIO" });
  });

  it("stops the input and zstd when the reader gives up", async () => {
    const input = from(zstd(Buffer.alloc(20 * 1024 * 1024, 1)));
    const out = decompress(input);
    for await (const _ of out) break;
    await new Promise((resolve) => setTimeout(resolve, 100));
    expect(input.destroyed).toBe(true);
    expect(zstdChildren()).toEqual([]);
  });
});
