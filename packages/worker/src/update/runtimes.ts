import { randomBytes } from 'node:crypto';
import { readFileSync } from 'node:fs';
import { mkdir, readFile, rename, rm } from 'node:fs/promises';
import { createRequire } from 'node:module';
import { join } from 'node:path';
import { writeFileAtomic } from '../config/atomic-file.ts';
import { DaemonLock, LockHeldError } from '../platform/lock.ts';
import { npmEnvironment, npmInvocation, spawnRunner, type CommandRunner } from './command-runner.ts';
import { UpdateError, errorText } from './errors.ts';
import { RUNTIME_PINS } from './runtime-pins.ts';

// Heavy engine runtimes (onnxruntime-node: ~290 MB) are not dependencies of the worker: every worker
// would carry them, and their install scripts reach hosts other than the registry. They are installed
// on demand (`studio-worker engines add onnx`) into `<data dir>/runtimes/<engine>/`, with `npm ci`
// against the dependency tree pinned in runtime-pins.ts (every package checked against its sha512),
// install scripts off, and loaded from there with createRequire (locateRuntime).

/** One package of a pinned tree, as package-lock.json v3 writes it. */
export interface PinnedPackage {
  version: string;
  resolved?: string;
  integrity?: string;
  [key: string]: unknown;
}

/** An engine runtime: its top package and the exact tree `npm ci` installs. */
export interface RuntimePin {
  package: string;
  version: string;
  integrity: string;
  /** `node_modules/<name>` → its lock entry. */
  packages: Record<string, PinnedPackage>;
}

/**
 * What a runtime's own install scripts would fetch from elsewhere, switched off by their own
 * switches as well (scripts do not run at all: `--ignore-scripts`; these hold should one ever run).
 */
const SCRIPT_SWITCHES: Readonly<Record<string, NodeJS.ProcessEnv>> = {
  onnx: { ONNXRUNTIME_NODE_INSTALL: 'skip', npm_config_onnxruntime_node_install: 'skip' },
};

/** Written last into a runtime's folder; a folder without it (or with another version) is not installed. */
const MARKER = '.installed.json';
const OUTPUT_TAIL_LINES = 15;

export function runtimePaths(dataDir: string) {
  const root = join(dataDir, 'runtimes');
  return {
    root,
    dir: (engine: string) => join(root, engine),
    staging: (engine: string, nonce: string) => join(root, `.staging-${engine}-${nonce}`),
    installLock: join(root, '.install.lock'),
  };
}

/** The engines whose runtime is installed on demand. */
export function onDemandRuntimes(pins: Readonly<Record<string, RuntimePin>> = RUNTIME_PINS): string[] {
  return Object.keys(pins);
}

export function runtimePin(engine: string, pins: Readonly<Record<string, RuntimePin>> = RUNTIME_PINS): RuntimePin {
  const pin = pins[engine];
  if (!pin) throw new UpdateError('unknown_runtime', `"${engine}" has no runtime to install; engines with one: ${Object.keys(pins).join(', ')}`);
  return pin;
}

export interface RuntimeState {
  engine: string;
  package: string;
  version: string;
  dir: string;
  installed: boolean;
}

interface Marker {
  package: string;
  version: string;
  integrity: string;
  installedAt: string;
}

function readMarker(dir: string): Marker | null {
  try {
    return JSON.parse(readFileSync(join(dir, MARKER), 'utf8')) as Marker;
  } catch {
    return null;
  }
}

function markerMatches(marker: Marker | null, pin: RuntimePin): boolean {
  return marker?.package === pin.package && marker.version === pin.version && marker.integrity === pin.integrity;
}

export function runtimeState(engine: string, dataDir: string, pins: Readonly<Record<string, RuntimePin>> = RUNTIME_PINS): RuntimeState {
  const pin = runtimePin(engine, pins);
  const dir = runtimePaths(dataDir).dir(engine);
  return { engine, package: pin.package, version: pin.version, dir, installed: markerMatches(readMarker(dir), pin) };
}

/**
 * The absolute path of the runtime's entry module, installed under `dataDir` with the pinned
 * version, resolved as Node would from that folder; null when it is not installed there.
 */
export function locateRuntime(engine: string, dataDir: string, pins: Readonly<Record<string, RuntimePin>> = RUNTIME_PINS): string | null {
  const state = runtimeState(engine, dataDir, pins);
  if (!state.installed) return null;
  try {
    return createRequire(join(state.dir, 'package.json')).resolve(state.package);
  } catch {
    return null;
  }
}

/** How far an install is: `fetched` of `total` packages arrived (from npm's http log lines). */
export type RuntimeProgress =
  | { phase: 'installing'; fetched: number; total: number; package?: string }
  | { phase: 'verifying' }
  | { phase: 'done' };

export interface InstallRuntimeOptions {
  dataDir: string;
  onProgress?: (progress: RuntimeProgress) => void;
  runner?: CommandRunner;
  npm?: { command: string; prefixArgs: string[] };
  /** Environment for npm (default: ours without stray `npm_*` variables; the user's registry, proxy, offline kept). */
  env?: NodeJS.ProcessEnv;
  signal?: AbortSignal;
  /** Default 20 minutes: ~90 MB of archives on a slow line. */
  timeoutMs?: number;
  pins?: Readonly<Record<string, RuntimePin>>;
}

/**
 * Install the pinned runtime of `engine` under the data dir: `npm ci` in a staging folder against
 * the pinned lock (integrity of every package checked by npm; scripts off), the versions checked
 * again on disk, then renamed into place. Resolves at once when that version is already there.
 */
export async function installRuntime(engine: string, options: InstallRuntimeOptions): Promise<RuntimeState & { alreadyInstalled: boolean }> {
  const pins = options.pins ?? RUNTIME_PINS;
  const pin = runtimePin(engine, pins);
  const paths = runtimePaths(options.dataDir);
  const existing = runtimeState(engine, options.dataDir, pins);
  if (existing.installed) return { ...existing, alreadyInstalled: true };

  await mkdir(paths.root, { recursive: true });
  let lock: DaemonLock;
  try {
    lock = await DaemonLock.acquire(paths.installLock, (pid) => `another studio-worker (pid ${pid}) is installing a runtime into ${paths.root}; try again when it is done`);
  } catch (error) {
    if (error instanceof LockHeldError) throw new UpdateError('install_busy', error.message);
    throw new UpdateError('local_io', `cannot lock ${paths.installLock}: ${errorText(error)}`, { cause: error });
  }
  const staging = paths.staging(engine, randomBytes(4).toString('hex'));
  try {
    await writeStagingProject(staging, engine, pin);
    await runNpmCi(staging, engine, pin, options);
    options.onProgress?.({ phase: 'verifying' });
    await verifyTree(staging, pin);
    await writeFileAtomic(join(staging, MARKER), `${JSON.stringify({ package: pin.package, version: pin.version, integrity: pin.integrity, installedAt: new Date().toISOString() } satisfies Marker)}\n`, 0o644);
    const dir = paths.dir(engine);
    await rm(dir, { recursive: true, force: true });
    await rename(staging, dir);
    options.onProgress?.({ phase: 'done' });
    return { ...runtimeState(engine, options.dataDir, pins), alreadyInstalled: false };
  } catch (error) {
    await rm(staging, { recursive: true, force: true }).catch(() => {});
    if (error instanceof UpdateError) throw error;
    throw new UpdateError('local_io', `installing the ${engine} runtime into ${paths.dir(engine)} failed: ${errorText(error)}`, { cause: error });
  } finally {
    lock.release();
  }
}

/** package.json and package-lock.json of a project whose only dependency is the pinned runtime. */
async function writeStagingProject(dir: string, engine: string, pin: RuntimePin): Promise<void> {
  await mkdir(dir, { recursive: true });
  const name = `studio-worker-runtime-${engine}`;
  const manifest = { name, version: '0.0.0', private: true, description: `The ${engine} engine's runtime, installed by studio-worker engines add ${engine}.`, dependencies: { [pin.package]: pin.version } };
  const lock = { name, version: '0.0.0', lockfileVersion: 3, requires: true, packages: { '': { name, version: '0.0.0', dependencies: { [pin.package]: pin.version } }, ...pin.packages } };
  await writeFileAtomic(join(dir, 'package.json'), `${JSON.stringify(manifest, null, 2)}\n`, 0o644);
  await writeFileAtomic(join(dir, 'package-lock.json'), `${JSON.stringify(lock, null, 2)}\n`, 0o644);
}

/** npm's `http fetch GET 200 <url>` lines: one per package tarball it got (from the network or its cache). */
const FETCH_LINE = /\bhttp fetch GET (\d{3}) (\S+\.tgz)\b/;

async function runNpmCi(dir: string, engine: string, pin: RuntimePin, options: InstallRuntimeOptions): Promise<void> {
  const npm = options.npm ?? npmInvocation();
  const args = [...npm.prefixArgs, 'ci', '--omit=dev', '--ignore-scripts', '--no-audit', '--no-fund', '--loglevel=http'];
  const total = Object.keys(pin.packages).length;
  let fetched = 0;
  options.onProgress?.({ phase: 'installing', fetched, total });
  const result = await (options.runner ?? spawnRunner).run(npm.command, args, {
    cwd: dir,
    env: { ...(options.env ?? npmEnvironment()), ...SCRIPT_SWITCHES[engine] },
    timeoutMs: options.timeoutMs ?? 1_200_000,
    ...(options.signal ? { signal: options.signal } : {}),
    onStderrLine: (line) => {
      const match = FETCH_LINE.exec(line);
      if (!match || match[1] !== '200') return;
      fetched = Math.min(total, fetched + 1);
      const tarball = match[2]?.split('/').pop();
      options.onProgress?.({ phase: 'installing', fetched, total, ...(tarball ? { package: tarball } : {}) });
    },
  });
  if (options.signal?.aborted) throw new UpdateError('cancelled', `installing the ${engine} runtime stopped`);
  if (result.code !== 0) {
    const how = result.code === null ? `was killed (${result.signal ?? 'timeout'})` : `exited with code ${result.code}`;
    const tail = (result.stderr.trim() || result.stdout.trim())
      .split('\n')
      .filter((line) => !FETCH_LINE.test(line))
      .slice(-OUTPUT_TAIL_LINES)
      .join('\n');
    const hint = /EINTEGRITY/.test(result.stderr)
      ? ' A package the registry sent does not match the digest this worker pinned; the registry or a proxy altered it, nothing was installed.'
      : /ENOTCACHED|ENOTFOUND|ECONNREFUSED|ETIMEDOUT|EAI_AGAIN/.test(result.stderr)
        ? ' The npm registry could not be reached (or, offline, npm\'s cache lacks a package); check the network or npm\'s registry setting.'
        : '';
    throw new UpdateError('install_failed', `npm ci for ${pin.package} ${pin.version} ${how}.${hint}${tail ? `\n${tail}` : ''}`);
  }
}

/** Every pinned package is on disk with its pinned version, and the runtime resolves from the folder. */
async function verifyTree(dir: string, pin: RuntimePin): Promise<void> {
  for (const [key, entry] of Object.entries(pin.packages)) {
    let version: unknown;
    try {
      version = (JSON.parse(await readFile(join(dir, key, 'package.json'), 'utf8')) as { version?: unknown }).version;
    } catch (error) {
      throw new UpdateError('install_failed', `npm ci finished but ${key} is missing: ${errorText(error)}`, { cause: error });
    }
    if (version !== entry.version) throw new UpdateError('install_failed', `npm ci installed ${key} ${String(version)}, not the pinned ${entry.version}`);
  }
  try {
    createRequire(join(dir, 'package.json')).resolve(pin.package);
  } catch (error) {
    throw new UpdateError('install_failed', `${pin.package} was installed but does not resolve from ${dir}: ${errorText(error)}`, { cause: error });
  }
}
