import { describe, expect, it } from "vitest";
import { defaultWorkDir } from "./default-work-dir.js";

describe("defaultWorkDir", () => {
  it("is a hidden sibling of the upper", () => {
    expect(defaultWorkDir("/x/upper")).toBe("/x/.upper.work");
    expect(defaultWorkDir("/x/upper/")).toBe("/x/.upper.work");
    expect(defaultWorkDir("rel/up")).toBe("rel/.up.work");
  });
});
