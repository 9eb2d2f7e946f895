import { describe, expect, it } from "vitest";
import { bytesToText, checkName, textToBytes } from "./name.js";

describe("byte strings", () => {
  it("text becomes the byte string of its UTF-8 bytes and back; ASCII stays as it is", () => {
    expect(textToBytes("plain")).toBe("plain");
    expect(textToBytes("café")).toBe(Buffer.from("café").toString("latin1"));
    expect(textToBytes("café")).toHaveLength(5);
    expect(bytesToText(textToBytes("→ ü"))).toBe("→ ü");
    expect(bytesToText("caf\xe9")).toBe("caf\ufffd");
  });

  it("checkName counts a byte string's length as its bytes", () => {
    expect(() => checkName("\xe9".repeat(255), "lookup")).not.toThrow();
    expect(() => checkName(textToBytes("é".repeat(128)), "lookup")).toThrow(/ENAMETOOLONG/);
  });
});
