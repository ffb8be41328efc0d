import { spawn } from 'node:child_process';
import { cp, mkdir, readdir, readFile, rm, symlink, writeFile } from 'node:fs/promises';
import { join, resolve } from 'node:path';
import { fileURLToPath } from 'node:url';
import { npmEnvironment, npmInvocation } from '../../../src/update/command-runner.ts';
import type { TarInput } from '../../update/helpers/tarball.ts';

export const REPO_ROOT = resolve(fileURLToPath(new URL('../../../../../', import.meta.url)));
export const WORKER_DIR = join(REPO_ROOT, 'packages', 'worker');

export interface WorkerManifest {
  name: string;
  version: string;
  bin: Record<string, string>;
  files?: string[];
  exports?: unknown;
  dependencies?: Record<string, string>;
  devDependencies?: Record<string, string>;
  [key: string]: unknown;
}

export async function workerManifest(): Promise<WorkerManifest> {
  return JSON.parse(await readFile(join(WORKER_DIR, 'package.json'), 'utf8')) as WorkerManifest;
}

export interface StageOptions {
  /** The built dist/ to copy in. */
  dist: string;
  version?: string;
  /**
   * Drop `dependencies` from the manifest: the updater then runs no npm install, and the code finds
   * its packages in a node_modules further up (tests link the repository's there).
   */
  withoutDependencies?: boolean;
  /** Replace dist/cli.js (a broken release). */
  cliSource?: string;
}

/**
 * A package folder with what `files` ships (bin/, dist/, index.js, package.json) — a published
 * studio-worker, unpacked. Resolves with the folder.
 */
export async function stagePackage(dir: string, options: StageOptions): Promise<string> {
  const manifest = await workerManifest();
  if (options.version) manifest.version = options.version;
  if (options.withoutDependencies) delete manifest.dependencies;
  await mkdir(dir, { recursive: true });
  await writeFile(join(dir, 'package.json'), `${JSON.stringify(manifest, null, 2)}\n`);
  await cp(join(WORKER_DIR, 'bin'), join(dir, 'bin'), { recursive: true });
  await cp(join(WORKER_DIR, 'index.js'), join(dir, 'index.js'));
  await cp(options.dist, join(dir, 'dist'), { recursive: true });
  if (options.cliSource !== undefined) await writeFile(join(dir, 'dist', 'cli.js'), options.cliSource);
  return dir;
}

/** The folder's files as `package/<path>` tar entries (what `npm pack` makes, without npm). */
export async function packageEntries(dir: string, prefix = ''): Promise<TarInput[]> {
  const out: TarInput[] = [];
  for (const entry of await readdir(join(dir, prefix), { withFileTypes: true })) {
    const path = prefix ? `${prefix}/${entry.name}` : entry.name;
    if (entry.isDirectory()) out.push(...(await packageEntries(dir, path)));
    else out.push({ name: `package/${path}`, data: await readFile(join(dir, path)), mode: path.startsWith('bin/') ? 0o755 : 0o644 });
  }
  return out;
}

/** `<dir>/node_modules` → the repository's, so bundles below `dir` find their npm packages. */
export async function linkRepoNodeModules(dir: string): Promise<void> {
  await symlink(join(REPO_ROOT, 'node_modules'), join(dir, 'node_modules'), 'dir');
}

export interface NpmResult {
  code: number | null;
  stdout: string;
  stderr: string;
}

/**
 * npm as a user runs it, with the Node that runs the tests' npm: never with the `npm_*` variables an
 * `npm test` left in our environment (`npm_config_local_prefix` would make it act on this repository).
 */
export function runNpm(args: readonly string[], cwd: string, env: NodeJS.ProcessEnv = {}): Promise<NpmResult> {
  const npm = npmInvocation();
  return new Promise((resolvePromise) => {
    const child = spawn(npm.command, [...npm.prefixArgs, ...args], { cwd, env: { ...npmEnvironment(process.env), ...env }, stdio: ['ignore', 'pipe', 'pipe'] });
    let stdout = '';
    let stderr = '';
    child.stdout.setEncoding('utf8').on('data', (chunk: string) => (stdout += chunk));
    child.stderr.setEncoding('utf8').on('data', (chunk: string) => (stderr += chunk));
    child.on('error', (error) => resolvePromise({ code: null, stdout, stderr: `${stderr}${error.message}` }));
    child.on('close', (code) => resolvePromise({ code, stdout, stderr }));
  });
}

export async function mustNpm(args: readonly string[], cwd: string, env: NodeJS.ProcessEnv = {}): Promise<string> {
  const result = await runNpm(args, cwd, env);
  if (result.code !== 0) throw new Error(`npm ${args.join(' ')} (in ${cwd}) exited with ${result.code}:\n${result.stderr.slice(-3000)}`);
  return result.stdout;
}

/** `npm pack` of a package folder (or of a workspace, `-w studio-worker`); resolves with the tarball's path. */
export async function npmPack(cwd: string, destination: string, extraArgs: readonly string[] = []): Promise<string> {
  await mkdir(destination, { recursive: true });
  const stdout = await mustNpm(['pack', ...extraArgs, '--pack-destination', destination, '--json'], cwd);
  const [packed] = JSON.parse(stdout) as Array<{ filename: string }>;
  if (!packed) throw new Error(`npm pack printed no file:\n${stdout}`);
  return join(destination, packed.filename);
}

/**
 * A project that installs studio-worker from a tarball as a user would: a bare package.json, no
 * install-script policy, no environment tweaks. Nothing in the worker's dependency tree has an
 * install script (onnxruntime-node, whose postinstall fetched from another host, is installed on
 * demand with scripts off: `studio-worker engines add onnx`).
 */
export async function installTarball(projectDir: string, tarball: string): Promise<void> {
  await mkdir(projectDir, { recursive: true });
  await writeFile(join(projectDir, 'package.json'), `${JSON.stringify({ name: 'release-test-project', private: true }, null, 2)}\n`);
  await mustNpm(['install', tarball, '--no-audit', '--no-fund'], projectDir);
}

export async function removeDir(dir: string | undefined): Promise<void> {
  if (dir) await rm(dir, { recursive: true, force: true });
}

/** 0.1.0 → 0.1.1 (a prerelease or build suffix is dropped). */
export function bumpPatch(version: string): string {
  const match = /^(\d+)\.(\d+)\.(\d+)/.exec(version);
  if (!match) throw new Error(`not a version: ${version}`);
  return `${match[1]}.${match[2]}.${Number(match[3]) + 1}`;
}
