import { describe, expect, it } from "vitest";
import { TRANSPORT_NAMES } from "../daemon/transports.js";
import { defaultTransport, selectedTransports } from "./transports.js";

describe("selectedTransports", () => {
  it("is every registered transport unless UNIONFS_TRANSPORTS names some", () => {
    expect(selectedTransports({})).toEqual([...TRANSPORT_NAMES]);
    expect(selectedTransports({ UNIONFS_TRANSPORTS: " " })).toEqual([...TRANSPORT_NAMES]);
    expect(selectedTransports({ UNIONFS_TRANSPORTS: " fuse-native " })).toEqual(["fuse-native"]);
    expect(defaultTransport({ UNIONFS_TRANSPORTS: "fuse-native" })).toBe("fuse-native");
  });

  it("refuses an unknown name, listing the known ones", () => {
    expect(() => selectedTransports({ UNIONFS_TRANSPORTS: "fuse-native,nosuch" })).toThrow(
      `UNIONFS_TRANSPORTS: unknown transport 'nosuch' (known: ${TRANSPORT_NAMES.join(", ")})`,
    );
  });
});
