#!/usr/bin/env node
import { execFileSync } from "node:child_process";
// Builds the test image: a docker-save tarball (OCI layout plus manifest.json, as docker 25+
// writes it) with three layers, bottom first:
//   1. rootfs: Debian's busybox-static as /bin/busybox with its applets as symlinks, /etc/passwd,
//      /etc/group, /tmp, /root (gzip-compressed, to exercise decompression);
//   2. testdata/sample/base;
//   3. testdata/sample/app, which deletes etc/motd (.wh.motd) and makes var/cache opaque.
// Everything is deterministic (sorted entries, fixed mtimes, uid/gid 0), so the DiffIDs are
// the same on every machine with the same busybox.
//
// usage: node tools/build-test-image.mjs OUTPUT.tar [--name NAME]
import { createHash } from "node:crypto";
import { existsSync, lstatSync, readdirSync, readFileSync, readlinkSync, writeFileSync } from "node:fs";
import { dirname, join } from "node:path";
import { fileURLToPath } from "node:url";
import { gzipSync } from "node:zlib";
import tar from "tar-stream";

const REPO = join(dirname(fileURLToPath(import.meta.url)), "..");
const MTIME = new Date("2026-01-01T00:00:00Z");
const BUSYBOX = "/bin/busybox";
const APPLETS = [
  "sh",
  "ls",
  "cat",
  "echo",
  "id",
  "hostname",
  "ps",
  "sleep",
  "true",
  "false",
  "mount",
  "wc",
  "head",
  "env",
  "uname",
  "rm",
  "mkdir",
  "touch",
  "yes",
  "dd",
  "grep",
  "sed",
  "test",
  "stat",
  "kill",
  "find",
  "sync",
];

const args = process.argv.slice(2);
const output = args[0];
const nameFlag = args.indexOf("--name");
const name = nameFlag >= 0 ? args[nameFlag + 1] : "unionfs-test:latest";
if (output === undefined || output.startsWith("-")) {
  console.error("usage: node tools/build-test-image.mjs OUTPUT.tar [--name NAME]");
  process.exit(2);
}
if (!existsSync(BUSYBOX)) {
  console.error(`${BUSYBOX} is missing: apt-get install -y busybox-static`);
  process.exit(1);
}
/** ldd fails (exit 1, "not a dynamic executable") for a static binary. */
function isStatic(path) {
  try {
    execFileSync("ldd", [path], { stdio: "ignore" });
    return false;
  } catch {
    return true;
  }
}
if (!isStatic(BUSYBOX)) {
  console.error(`${BUSYBOX} is not a static busybox: apt-get install -y busybox-static`);
  process.exit(1);
}

/** Packs entries ({name, type, mode, data?, linkname?}) into one tar buffer, in the given order. */
async function packTar(entries) {
  const pack = tar.pack();
  const chunks = [];
  pack.on("data", (c) => chunks.push(c));
  const done = new Promise((resolve, reject) => pack.on("end", resolve).on("error", reject));
  for (const e of entries) {
    const header = { name: e.name, type: e.type, mode: e.mode, uid: 0, gid: 0, mtime: MTIME, linkname: e.linkname };
    await new Promise((resolve, reject) =>
      pack.entry(header, e.data ?? null, (err) => (err ? reject(err) : resolve())),
    );
  }
  pack.finalize();
  await done;
  return Buffer.concat(chunks);
}

/** A directory tree as tar entries, sorted, whiteout files included as they are. */
function treeEntries(root, prefix = "") {
  const out = [];
  for (const entry of readdirSync(join(root, prefix)).sort()) {
    const rel = prefix === "" ? entry : `${prefix}/${entry}`;
    const st = lstatSync(join(root, rel));
    const mode = st.mode & 0o7777;
    if (st.isDirectory()) {
      out.push({ name: `${rel}/`, type: "directory", mode });
      out.push(...treeEntries(root, rel));
    } else if (st.isSymbolicLink()) {
      out.push({ name: rel, type: "symlink", mode: 0o777, linkname: readlinkSync(join(root, rel)) });
    } else {
      out.push({ name: rel, type: "file", mode, data: readFileSync(join(root, rel)) });
    }
  }
  return out;
}

function rootfsEntries() {
  const dir = (n, mode = 0o755) => ({ name: `${n}/`, type: "directory", mode });
  const file = (n, data, mode = 0o644) => ({ name: n, type: "file", mode, data: Buffer.from(data) });
  return [
    dir("bin"),
    file("bin/busybox", readFileSync(BUSYBOX), 0o755),
    ...APPLETS.sort().map((a) => ({ name: `bin/${a}`, type: "symlink", mode: 0o777, linkname: "busybox" })),
    dir("dev"),
    dir("etc"),
    file("etc/group", "root:x:0:\nnogroup:x:65534:\n"),
    file("etc/passwd", "root:x:0:0:root:/root:/bin/sh\nnobody:x:65534:65534:nobody:/nonexistent:/bin/false\n"),
    dir("proc"),
    dir("root", 0o700),
    dir("sys"),
    dir("tmp", 0o1777),
  ];
}

const sha256 = (data) => `sha256:${createHash("sha256").update(data).digest("hex")}`;
const layerTars = [
  await packTar(rootfsEntries()),
  await packTar(treeEntries(join(REPO, "testdata/sample/base"))),
  await packTar(treeEntries(join(REPO, "testdata/sample/app"))),
];
const blobsOf = [gzipSync(layerTars[0], { level: 9 }), layerTars[1], layerTars[2]];
const mediaTypes = [
  "application/vnd.oci.image.layer.v1.tar+gzip",
  "application/vnd.oci.image.layer.v1.tar",
  "application/vnd.oci.image.layer.v1.tar",
];
const config = Buffer.from(
  JSON.stringify({
    architecture: "amd64",
    os: "linux",
    created: MTIME.toISOString(),
    config: { Env: ["PATH=/bin"], Cmd: ["/bin/sh"], WorkingDir: "/" },
    rootfs: { type: "layers", diff_ids: layerTars.map(sha256) },
    history: [
      { created: MTIME.toISOString(), created_by: "busybox-static rootfs" },
      { created: MTIME.toISOString(), created_by: "testdata/sample/base" },
      { created: MTIME.toISOString(), created_by: "testdata/sample/app" },
    ],
  }),
);
const manifest = Buffer.from(
  JSON.stringify({
    schemaVersion: 2,
    mediaType: "application/vnd.oci.image.manifest.v1+json",
    config: { mediaType: "application/vnd.oci.image.config.v1+json", digest: sha256(config), size: config.length },
    layers: blobsOf.map((b, i) => ({ mediaType: mediaTypes[i], digest: sha256(b), size: b.length })),
  }),
);
const blobName = (data) => `blobs/sha256/${sha256(data).slice(7)}`;
const index = {
  schemaVersion: 2,
  mediaType: "application/vnd.oci.image.index.v1+json",
  manifests: [
    {
      mediaType: "application/vnd.oci.image.manifest.v1+json",
      digest: sha256(manifest),
      size: manifest.length,
      annotations: { "io.containerd.image.name": name, "org.opencontainers.image.ref.name": name.split(":").pop() },
    },
  ],
};
const dockerManifest = [{ Config: blobName(config), RepoTags: [name], Layers: blobsOf.map(blobName) }];
const outer = await packTar([
  { name: "blobs/", type: "directory", mode: 0o755 },
  { name: "blobs/sha256/", type: "directory", mode: 0o755 },
  ...[config, manifest, ...blobsOf].map((b) => ({ name: blobName(b), type: "file", mode: 0o644, data: b })),
  { name: "index.json", type: "file", mode: 0o644, data: Buffer.from(JSON.stringify(index)) },
  { name: "manifest.json", type: "file", mode: 0o644, data: Buffer.from(JSON.stringify(dockerManifest)) },
  { name: "oci-layout", type: "file", mode: 0o644, data: Buffer.from('{"imageLayoutVersion":"1.0.0"}') },
]);
writeFileSync(output, outer);
console.log(`${output}: ${name}, layers ${layerTars.map((t) => sha256(t).slice(7, 19)).join(" ")}`);
