import { describe, expect, it } from "vitest";
import { chainId, chainIds } from "./chain-id.js";

const A = "sha256:a9561eb1b190625c9adb5a9513e72c4dedafc1cb2d4c5236c9a6957ec7dfd5a9";
const B = "sha256:3b8d3e20b7e96c3d24bf4cc1c6ff5a0a3c6b3b4b3fc3e44f4dd1b0e5fb0a7b0b";

describe("chainIds", () => {
  it("is the DiffID for a single layer", () => {
    expect(chainIds([A])).toEqual([A]);
  });

  it("hashes the parent's ChainID, a space and the DiffID", () => {
    // printf '%s' "$A $B" | sha256sum
    expect(chainId([A, B])).toBe("sha256:fc36207c2e1e8d56c0d23a7d951984156e93cff150cd015239737748958d548f");
    expect(chainIds([A, B, A])).toHaveLength(3);
  });

  it("is null for no layers", () => {
    expect(chainId([])).toBeNull();
  });
});
