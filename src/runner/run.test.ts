import { describe, expect, it } from "vitest";
import { imageCommand, imageDefaults } from "./image-source.js";
import { helperStatus } from "./run.js";

describe("helperStatus", () => {
  it("is the command's exit code, or 128+N for a signal", () => {
    expect(helperStatus("ok\nexit 3\n", 3, null)).toEqual({ code: 3 });
    expect(helperStatus("ok\nsignal 9\n", 137, null)).toEqual({ code: 137 });
    expect(helperStatus("ok\nsignal 15\n", 143, null)).toEqual({ code: 143 });
  });

  it("carries a set-up or exec failure with its code and message", () => {
    expect(helperStatus("error 127 exec nope: No such file or directory\nexit 127\n", 127, null)).toEqual({
      code: 127,
      error: "exec nope: No such file or directory",
    });
    expect(helperStatus("error 125 mount proc on /proc: Operation not permitted\n", 125, null)).toMatchObject({
      code: 125,
    });
  });

  it("falls back to how the helper itself ended when it could not report", () => {
    expect(helperStatus("", null, "SIGKILL")).toEqual({ code: 137 });
    expect(helperStatus("ok\n", 2, null)).toEqual({ code: 2 });
    expect(helperStatus("", null, null)).toEqual({ code: 125 });
  });
});

describe("image defaults", () => {
  const config = {
    config: { Env: ["PATH=/bin"], Entrypoint: ["/init"], Cmd: ["sh"], WorkingDir: "/app", User: "nobody" },
  };

  it("reads Env, Entrypoint, Cmd, WorkingDir and User from an OCI config", () => {
    expect(imageDefaults(config)).toEqual({
      env: ["PATH=/bin"],
      entrypoint: ["/init"],
      cmd: ["sh"],
      workingDir: "/app",
      user: "nobody",
    });
    expect(imageDefaults({})).toEqual({ env: [], entrypoint: [], cmd: [] });
  });

  it("runs ENTRYPOINT with the given command, or with CMD when none is given", () => {
    const d = imageDefaults(config);
    expect(imageCommand(d, [])).toEqual(["/init", "sh"]);
    expect(imageCommand(d, ["ls", "/"])).toEqual(["/init", "ls", "/"]);
    expect(() => imageCommand(imageDefaults({}), [])).toThrow(/no command given/);
  });
});
