// The main script of the single-file worker (Node's single executable applications; built by
// scripts/build-binaries.ts). CommonJS and dependency-free on purpose: it runs before anything
// else, inside the binary, where require() sees only Node's built-in modules.
//
// The binary carries the published npm package (bin/, dist/, package.json) with its production
// node_modules for this OS and CPU (sharp's native files included) as one gzip'd payload. On the
// first start of a build it is unpacked under the data dir, `<data dir>/binary/<version>-<digest>/`,
// once; every start then runs the package's own bin from there, so the single file behaves exactly
// like `npm i studio-worker` (the launcher, the updater, the ONNX host, the web UI).
//
//   studio-worker-<os>-<arch> <args…>           the CLI (`run`, `status`, `engines add onnx`, …)
//   studio-worker-<os>-<arch> <file.js> <args…> run that script, as `node <file.js>` would: how the
//                                               worker starts its own child processes (ONNX host)
'use strict';
const { getAsset } = require('node:sea');
const { createHash } = require('node:crypto');
const { existsSync, mkdirSync, renameSync, rmSync, writeFileSync, statSync } = require('node:fs');
const { homedir } = require('node:os');
const { dirname, isAbsolute, join, normalize, sep } = require('node:path');
const { pathToFileURL } = require('node:url');
const { gunzipSync } = require('node:zlib');

const say = (line) => process.stderr.write(`studio-worker: ${line}\n`);

/** Mirrors defaultDataDir() in packages/worker/src/update/paths.ts (the parent of the default models root). */
function dataDir() {
  const xdg = (process.env.XDG_DATA_HOME || '').trim();
  return xdg ? join(xdg, 'studio-worker') : join(homedir(), '.local', 'share', 'studio-worker');
}

/** Unpacks the payload once per build; a half-written folder is never used (staging + rename). */
function unpacked() {
  const index = JSON.parse(getAsset('payload.json', 'utf8'));
  const root = join(dataDir(), 'binary', `${index.version}-${index.digest.slice(0, 16)}`);
  if (existsSync(join(root, '.complete'))) return root;
  const payload = gunzipSync(Buffer.from(getAsset('payload.gz')));
  if (createHash('sha256').update(payload).digest('hex') !== index.digest) throw new Error('the payload inside this binary is damaged; download it again');
  const staging = `${root}.tmp-${process.pid}`;
  rmSync(staging, { recursive: true, force: true });
  let offset = 0;
  for (const file of index.files) {
    const target = normalize(join(staging, file.path));
    // Our own build wrote these names; refuse anything that would leave the folder all the same.
    if (isAbsolute(file.path) || !target.startsWith(staging + sep)) throw new Error(`refusing payload entry ${file.path}`);
    mkdirSync(dirname(target), { recursive: true });
    writeFileSync(target, payload.subarray(offset, offset + file.size), { mode: file.mode & 0o111 ? 0o755 : 0o644 });
    offset += file.size;
  }
  writeFileSync(join(staging, '.complete'), `${JSON.stringify({ version: index.version, digest: index.digest })}\n`);
  try {
    renameSync(staging, root);
  } catch (error) {
    // Another start of the same binary got there first.
    rmSync(staging, { recursive: true, force: true });
    if (!existsSync(join(root, '.complete'))) throw error;
  }
  return root;
}

function isScript(path) {
  if (!path || !isAbsolute(path) || !/\.(c|m)?js$/.test(path)) return false;
  try {
    return statSync(path).isFile();
  } catch {
    return false;
  }
}

async function main() {
  const args = process.argv.slice(2);
  let entry;
  if (isScript(args[0])) {
    entry = args[0];
    process.argv = [process.execPath, entry, ...args.slice(1)];
  } else {
    entry = join(unpacked(), 'bin', 'studio-worker.js');
    process.argv = [process.execPath, entry, ...args];
  }
  await import(pathToFileURL(entry).href);
}

main().catch((error) => {
  say(error && error.message ? error.message : String(error));
  process.exitCode = 1;
});
