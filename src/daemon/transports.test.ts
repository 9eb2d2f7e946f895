import { describe, expect, it } from "vitest";
import { UserError } from "../errors.js";
import { DEFAULT_TRANSPORT, TRANSPORT_NAMES, transportNamed } from "./transports.js";

describe("the transport registry", () => {
  it("lists fuse-native, the default, by name", () => {
    expect(TRANSPORT_NAMES).toContain("fuse-native");
    expect(TRANSPORT_NAMES).toContain(DEFAULT_TRANSPORT);
    expect(new Set(TRANSPORT_NAMES).size).toBe(TRANSPORT_NAMES.length);
    expect(transportNamed("fuse-native").name).toBe("fuse-native");
  });

  it("refuses an unknown name with one line listing the known ones", () => {
    expect(() => transportNamed("nosuch")).toThrow(UserError);
    expect(() => transportNamed("nosuch")).toThrow(
      new UserError(`unknown transport 'nosuch' (known: ${TRANSPORT_NAMES.join(", ")})`),
    );
    expect(() => transportNamed("")).toThrow(/^unknown transport ''/);
  });

  it.each(TRANSPORT_NAMES)("%s loads as a Transport", async (name) => {
    const transport = await transportNamed(name).load();
    expect(typeof transport.mount).toBe("function");
  });
});
