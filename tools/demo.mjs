#!/usr/bin/env node
// `npm start`: mounts the bundled sample layers (testdata/sample) with unionfs, prints the
// merged tree next to what each layer holds, and unmounts. Needs root (or fusermount) and FUSE.
import { execFileSync } from "node:child_process";
import { lstatSync, mkdtempSync, readdirSync, readFileSync, readlinkSync, rmSync } from "node:fs";
import { tmpdir } from "node:os";
import { dirname, join } from "node:path";
import { fileURLToPath } from "node:url";

const root = dirname(dirname(fileURLToPath(import.meta.url)));
const cli = join(root, "dist", "cli", "main.js");
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
