import { describe, expect, it } from "vitest";
import { XinoMap } from "./inode-map.js";

const [A, B, C] = [10n, 20n, 30n];

describe("XinoMap", () => {
  it("reports real numbers when every layer is on one filesystem, with or without an upper", () => {
    expect(new XinoMap(A, [A, A]).map(A, 12345n)).toBe(12345n);
    expect(new XinoMap(null, [A, A]).map(A, 12345n)).toBe(12345n);
    expect(new XinoMap(A, [A]).xinoBits).toBe(0n);
  });

  it("puts a lower filesystem's id in the top bits, as overlayfs with xino=on (2 bits for one lower fs)", () => {
    const map = new XinoMap(B, [A]);
    expect(map.xinoBits).toBe(2n);
    expect(map.map(A, 3n)).toBe(9223372036854775811n); // read off kernel overlayfs with xino=on
    expect(map.map(B, 3n)).toBe(3n); // the upper's filesystem is id 0
  });

  it("numbers the lowers' filesystems in stack order, id 0 kept for the upper even without one", () => {
    const map = new XinoMap(null, [A, C, A]);
    expect(map.xinoBits).toBe(3n); // ids 0..2: ilog2(2) + 2
    expect(map.map(A, 7n)).toBe(7n | (1n << 62n));
    expect(map.map(C, 7n)).toBe(7n | (2n << 62n));
  });

  it("gives numbers that overflow into the id bits, and unknown filesystems, numbers of its own", () => {
    const map = new XinoMap(B, [A]);
    const big = 1n << 62n;
    const own = map.map(A, big);
    expect(own >> 62n).toBe(1n); // the lowest id bit: never an id's range
    expect(map.map(A, big)).toBe(own); // stable for the life of the mount
    const foreign = map.map(C, 5n);
    expect(foreign >> 62n).toBe(1n);
    expect(foreign).not.toBe(own);
    const oneFs = new XinoMap(A, [A]);
    expect(oneFs.map(C, 5n) >> 63n).toBe(1n); // above any real number
  });
});
