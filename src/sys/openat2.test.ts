import {
  closeSync,
  constants,
  fstatSync,
  mkdirSync,
  mkdtempSync,
  openSync,
  rmSync,
  symlinkSync,
  writeFileSync,
} from "node:fs";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { afterEach, beforeEach, describe, expect, it } from "vitest";
import {
  AT_FDCWD,
  openat2,
  openat2Supported,
  RESOLVE_BENEATH,
  RESOLVE_IN_ROOT,
  RESOLVE_NO_SYMLINKS,
} from "./openat2.js";

let root: string;
beforeEach(() => {
  root = mkdtempSync(join(tmpdir(), "unionfs-openat2-"));
  mkdirSync(join(root, "d"));
  writeFileSync(join(root, "d", "f"), "data");
  symlinkSync("d", join(root, "link"));
  writeFileSync(join(tmpdir(), `${root.split("/").pop()}-outside`), "secret");
});
afterEach(() => {
  rmSync(root, { recursive: true, force: true });
  rmSync(join(tmpdir(), `${root.split("/").pop()}-outside`), { force: true });
});

function withDir<T>(fn: (dirfd: number) => T): T {
  const dirfd = openSync(root, constants.O_RDONLY | constants.O_DIRECTORY);
  try {
    return fn(dirfd);
  } finally {
    closeSync(dirfd);
  }
}

describe.skipIf(!openat2Supported())("openat2", () => {
  it("opens a plain path and returns a usable fd", () => {
    const fd = openat2(AT_FDCWD, join(root, "d", "f"), constants.O_RDONLY, 0, RESOLVE_NO_SYMLINKS);
    try {
      expect(fstatSync(fd).size).toBe(4);
    } finally {
      closeSync(fd);
    }
  });

  it("RESOLVE_NO_SYMLINKS refuses a symlink component with ELOOP", () => {
    withDir((dirfd) => {
      expect(() => openat2(dirfd, "link/f", constants.O_RDONLY, 0, RESOLVE_NO_SYMLINKS)).toThrow(
        expect.objectContaining({ code: "ELOOP", syscall: "openat2" }),
      );
      closeSync(openat2(dirfd, "link/f", constants.O_RDONLY, 0, 0));
    });
  });

  it("RESOLVE_BENEATH refuses .. escapes with EXDEV", () => {
    const outside = `../${root.split("/").pop()}-outside`;
    withDir((dirfd) => {
      expect(() => openat2(dirfd, outside, constants.O_RDONLY, 0, RESOLVE_BENEATH)).toThrow(
        expect.objectContaining({ code: "EXDEV" }),
      );
      expect(() => openat2(dirfd, "/etc/passwd", constants.O_RDONLY, 0, RESOLVE_BENEATH)).toThrow(
        expect.objectContaining({ code: "EXDEV" }),
      );
      closeSync(openat2(dirfd, "d/../d/f", constants.O_RDONLY, 0, RESOLVE_BENEATH));
    });
  });

  it("RESOLVE_IN_ROOT clamps .. at the root", () => {
    withDir((dirfd) => {
      const fd = openat2(dirfd, "../../d/f", constants.O_RDONLY, 0, RESOLVE_IN_ROOT);
      closeSync(fd);
    });
  });

  it("creates files with O_CREAT and a mode, and rejects a mode without it", () => {
    withDir((dirfd) => {
      closeSync(openat2(dirfd, "new", constants.O_CREAT | constants.O_WRONLY, 0o600, RESOLVE_BENEATH));
      expect(() => openat2(dirfd, "d/f", constants.O_RDONLY, 0o600, 0)).toThrow(
        expect.objectContaining({ code: "EINVAL" }),
      );
    });
  });
});
