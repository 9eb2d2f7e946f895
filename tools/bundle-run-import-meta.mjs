// Injected into dist/cli/run.cjs by tools/bundle-run.mjs: import.meta.url for a CommonJS bundle
// (`require` and `__filename` are the bundle's own).
export const import_meta_url = require("node:url").pathToFileURL(__filename).href;
