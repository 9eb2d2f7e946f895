#!/usr/bin/env node
// Builds a tiny root file system from Debian's busybox-static: /bin/busybox with all its applets
// as symlinks, /etc/passwd, /etc/group, /etc/hostname and empty /dev /proc /sys /tmp /root.
// `npm start` (tools/demo.mjs) and bench/run-startup.mjs build one at start time, and the
// runner tests import it (types in build-rootfs.d.mts).
//
// usage: node tools/build-rootfs.mjs DIR
import { execFileSync } from "node:child_process";
import { chmodSync, copyFileSync, existsSync, mkdirSync, symlinkSync, writeFileSync } from "node:fs";
import { join } from "node:path";
import { fileURLToPath } from "node:url";

const BUSYBOX = "/bin/busybox";
/** What the rootfs's /etc/hostname says, so a test can tell it from the host's. */
export const ROOTFS_HOSTNAME_FILE = "busybox-rootfs\n";

/** Why no rootfs can be built here, or null. */
export function busyboxMissing() {
  if (!existsSync(BUSYBOX)) return `${BUSYBOX} is missing: apt-get install -y busybox-static`;
  try {
    execFileSync("ldd", [BUSYBOX], { stdio: "ignore" });
    return `${BUSYBOX} is not the static busybox: apt-get install -y busybox-static`;
  } catch {
    return null;
  }
}

export function buildRootfs(dir) {
  const missing = busyboxMissing();
  if (missing !== null) throw new Error(missing);
  const mk = (rel, mode = 0o755) => {
    mkdirSync(join(dir, rel), { recursive: true });
    chmodSync(join(dir, rel), mode);
  };
  mk(".");
  for (const d of ["bin", "dev", "etc", "proc", "sys", "usr", "var"]) mk(d);
  mk("root", 0o700);
  mk("tmp", 0o1777);
  copyFileSync(BUSYBOX, join(dir, "bin/busybox"));
  chmodSync(join(dir, "bin/busybox"), 0o755);
  for (const applet of execFileSync(BUSYBOX, ["--list"], { encoding: "utf8" }).split("\n")) {
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

if (process.argv[1] === fileURLToPath(import.meta.url)) {
  const dir = process.argv[2];
  // an option is never a directory name: `--help` used to build a rootfs called "--help"
  if (dir === undefined || dir.startsWith("-") || process.argv.length > 3) {
    console.error("usage: node tools/build-rootfs.mjs DIR");
    process.exit(dir === "--help" || dir === "-h" ? 0 : 2);
  }
  try {
    buildRootfs(dir);
  } catch (e) {
    console.error(`build-rootfs: ${e.message}`);
    process.exit(1);
  }
  console.log(`${dir}: busybox rootfs`);
}
