#!/usr/bin/env node
// `npm start`: mounts the bundled sample layers (testdata/sample) with unionfs, prints the
// merged tree next to what each layer holds, and unmounts; then runs a command on the same
// layers, over a busybox rootfs layer built here from Debian's busybox-static, with
// `unionfs run` (new namespaces, pivot_root into the union). Needs root (or fusermount) and FUSE.
import { execFileSync } from "node:child_process";
import { lstatSync, mkdtempSync, readdirSync, readFileSync, readlinkSync, rmSync } from "node:fs";
import { tmpdir } from "node:os";
import { dirname, join } from "node:path";
import { fileURLToPath } from "node:url";
import { buildRootfs, busyboxMissing } from "./build-rootfs.mjs";

const root = dirname(dirname(fileURLToPath(import.meta.url)));
// the installed command (package.json "bin")
const cli = join(root, "dist", "cli", "unionfs.cjs");
const app = join(root, "testdata", "sample", "app");
const base = join(root, "testdata", "sample", "base");

function tree(dir, prefix = "") {
  const lines = [];
  for (const name of readdirSync(dir).sort()) {
    const path = join(dir, name);
    const st = lstatSync(path);
    if (st.isDirectory()) {
      lines.push(`${prefix}${name}/`);
      lines.push(...tree(path, `${prefix}  `));
    } else if (st.isSymbolicLink()) {
      lines.push(`${prefix}${name} -> ${readlinkSync(path)}`);
    } else {
      const text = readFileSync(path, "utf8").split("\n")[0];
      lines.push(`${prefix}${name}  "${text}"`);
    }
  }
  return lines;
}

const mnt = mkdtempSync(join(tmpdir(), "unionfs-demo-"));
const run = (...args) => execFileSync(process.execPath, [cli, ...args], { stdio: "inherit" });
console.log(`$ unionfs mount testdata/sample/app:testdata/sample/base ${mnt}`);
run("mount", `${app}:${base}`, mnt);
try {
  console.log("\nbase layer (bottom):");
  console.log(tree(base, "  ").join("\n"));
  console.log("\napp layer (top; .wh.* entries are whiteouts):");
  console.log(tree(app, "  ").join("\n"));
  console.log("\nmerged view:");
  console.log(tree(mnt, "  ").join("\n"));
} finally {
  console.log(`\n$ unionfs umount ${mnt}`);
  run("umount", mnt);
  rmSync(mnt, { recursive: true, force: true });
}

// The runner: the two sample layers over a busybox layer (the bottom one, as a base image's
// would be), a command inside.
const missing = busyboxMissing();
if (missing !== null) {
  console.error(`\nnpm start: cannot show 'unionfs run': ${missing}`);
  process.exit(1);
}
const work = mkdtempSync(join(tmpdir(), "unionfs-demo-rootfs-"));
try {
  const rootfs = buildRootfs(join(work, "busybox"));
  const script = "cat /etc/hostname; ls /app; hostname; echo pid $$";
  const args = ["run", "--hostname", "demo", "--lower", `${app}:${base}:${rootfs}`, "--", "sh", "-c", script];
  console.log(
    `\n$ unionfs run --hostname demo --lower testdata/sample/app:testdata/sample/base:BUSYBOX -- sh -c '${script}'`,
  );
  console.log("  (BUSYBOX: a rootfs layer built just now from /bin/busybox)");
  const output = execFileSync(process.execPath, [cli, ...args], {
    encoding: "utf8",
    stdio: ["ignore", "pipe", "inherit"],
  });
  console.log(output.trimEnd().replace(/^/gm, "  "));
} finally {
  rmSync(work, { recursive: true, force: true });
}
