/**
 * A tiny root file system for runner tests, from Debian's busybox-static: /bin/busybox with
 * every applet it lists as a symlink next to it, /etc/passwd and /etc/group (root, nobody),
 * /etc/hostname, and the usual empty mount points. The same layout as tools/build-rootfs.mjs
 * (which `npm start` and the benchmark use) and the test image's bottom layer.
 */
import { execFileSync } from "node:child_process";
import { chmodSync, copyFileSync, existsSync, mkdirSync, symlinkSync, writeFileSync } from "node:fs";
import { join } from "node:path";

export const BUSYBOX = "/bin/busybox";
/** What the rootfs's /etc/hostname says, so a test can tell it from the host's. */
export const ROOTFS_HOSTNAME_FILE = "busybox-rootfs\n";

/** Why no busybox rootfs can be built here, or null when it can. */
export function busyboxMissing(): string | null {
  if (!existsSync(BUSYBOX)) return `${BUSYBOX} is missing: apt-get install busybox-static`;
  try {
    execFileSync("ldd", [BUSYBOX], { stdio: "ignore" });
    return `${BUSYBOX} is dynamically linked: apt-get install busybox-static`;
  } catch {
    return null; // ldd fails on a static binary: that is what we want
  }
}

/** Builds the rootfs in `dir` (created if needed) and returns `dir`. */
export function buildBusyboxRootfs(dir: string): string {
  const missing = busyboxMissing();
  if (missing !== null) throw new Error(missing);
  const mk = (rel: string, mode = 0o755) => {
    mkdirSync(join(dir, rel), { recursive: true });
    chmodSync(join(dir, rel), mode);
  };
  mk(".");
  for (const d of ["bin", "dev", "etc", "proc", "sys", "usr", "var"]) mk(d);
  mk("root", 0o700);
  mk("tmp", 0o1777);
  copyFileSync(BUSYBOX, join(dir, "bin/busybox"));
  chmodSync(join(dir, "bin/busybox"), 0o755);
  const applets = execFileSync(BUSYBOX, ["--list"], { encoding: "utf8" }).split("\n");
  for (const applet of applets) {
    if (applet.length === 0 || applet === "busybox" || applet.includes("/")) continue;
    symlinkSync("busybox", join(dir, "bin", applet));
  }
  writeFileSync(
    join(dir, "etc/passwd"),
    "root:x:0:0:root:/root:/bin/sh\nnobody:x:65534:65534:nobody:/nonexistent:/bin/false\n",
  );
  writeFileSync(join(dir, "etc/group"), "root:x:0:\ntty:x:5:\nnogroup:x:65534:\n");
  writeFileSync(join(dir, "etc/hostname"), ROOTFS_HOSTNAME_FILE);
  return dir;
}
