import { randomBytes } from 'node:crypto';
import { existsSync } from 'node:fs';
import { chmod, copyFile, mkdir, open, readdir, readFile, realpath, rename, rm, stat } from 'node:fs/promises';
import { dirname, join, resolve, sep } from 'node:path';
import type { Logger } from '@studio-worker/log';
import { writeFileAtomic } from '../config/atomic-file.ts';
import { PACKAGE_ROOT } from '../package-layout.ts';
import { DaemonLock, LockHeldError } from '../platform/lock.ts';
import { npmEnvironment, npmInvocation, spawnRunner, type CommandRunner } from './command-runner.ts';
import { UpdateError, errorText } from './errors.ts';
import { readPointer, writePointer, type CurrentPointer } from './pointer.ts';
import { INSTALLED_MARKER, updatePaths } from './paths.ts';
import { parseVersion } from './semver.ts';

/** A version unpacked with its dependencies, ready to start. */
export interface InstalledVersion {
  version: string;
  dir: string;
  /** The CLI entry script (the package's `bin`), run with `node <entry> <argv>`. */
  entry: string;
}

/**
 * How an update lands on disk. The default (`VersionsInstaller`) keeps versions side by side under
 * `<data dir>/versions/` and switches a `current.json` pointer; another layout (a package manager,
 * a container image) would implement the same five steps.
 */
export interface Installer {
  /** Null when this install can update itself; else what the operator should do instead. */
  refusal(): Promise<string | null>;
  /** Unpack a verified archive as `version` and install its production dependencies. Does not switch. */
  install(version: string, archivePath: string, signal?: AbortSignal): Promise<InstalledVersion>;
  /** Make `version` the one the launcher runs; resolves with the pointer it replaced, for restore(). */
  activate(version: string): Promise<CurrentPointer | null>;
  /** Put back what activate() replaced (a rollback). */
  restore(previous: CurrentPointer | null): Promise<void>;
  /** Remove installed versions not in `keep`, and leftovers of interrupted installs; resolves with what went. */
  prune(keep: readonly string[]): Promise<string[]>;
}

export type InstallKind =
  /** Running from `<data dir>/versions/<version>/`: installed by this updater. */
  | { kind: 'versioned'; version: string }
  /** Running from a git checkout: `git pull` updates it, not the updater. */
  | { kind: 'git'; root: string }
  /** An npm install (global or local) or an unpacked archive: it stays as the launcher, updates go under versions/. */
  | { kind: 'package' };

export interface VersionsInstallerOptions {
  dataDir: string;
  /** The running worker's version (recorded as `previous` in the pointer). */
  currentVersion: string;
  /** The running worker's package folder (default: this file's package). */
  packageRoot?: string;
  /** The npm package name an archive must carry. */
  packageName?: string;
  runner?: CommandRunner;
  /** How to run npm (default: `npmInvocation()`). */
  npm?: { command: string; prefixArgs: string[] };
  /** Environment for npm (default: ours without stray `npm_*` variables). */
  env?: NodeJS.ProcessEnv;
  /** npm install may take a while on a slow mirror; default 10 minutes. */
  installTimeoutMs?: number;
  /**
   * This worker is a single file (SINGLE_FILE): a release is an executable, not an npm archive. It
   * is kept as `versions/<version>/studio-worker[.exe]` beside a package.json naming it as the bin,
   * so the pointer, the launcher and the rollback work as for packages.
   */
  singleFile?: boolean;
  log: Logger;
}

/** This module's package: packages/worker in a checkout, `<data dir>/versions/<v>` in an installed version. */
export const OWN_PACKAGE_ROOT = PACKAGE_ROOT;
const OUTPUT_TAIL_LINES = 15;

/** Versions side by side under `<data dir>/versions/<version>/`, and a `current.json` pointer. */
export class VersionsInstaller implements Installer {
  readonly #options: VersionsInstallerOptions;
  readonly #paths: ReturnType<typeof updatePaths>;
  readonly #runner: CommandRunner;

  constructor(options: VersionsInstallerOptions) {
    this.#options = options;
    this.#paths = updatePaths(options.dataDir);
    this.#runner = options.runner ?? spawnRunner;
  }

  async refusal(): Promise<string | null> {
    const kind = await detectInstallKind(this.#options.packageRoot ?? OWN_PACKAGE_ROOT, this.#paths.versions);
    if (kind.kind === 'git') return `this worker runs from a git checkout (${kind.root}); update it with git pull and npm install`;
    return null;
  }

  async install(version: string, archivePath: string, signal?: AbortSignal): Promise<InstalledVersion> {
    return this.#locked(async () => {
      const dir = join(this.#paths.versions, version);
      if (await isComplete(dir, version)) {
        this.#options.log.info({ op: 'auto_update', version, dir }, `${version} is already installed in ${dir}; reusing it`);
        return { version, dir, entry: await entryOf(dir, version) };
      }
      const staging = this.#paths.staging(version, randomBytes(4).toString('hex'));
      try {
        if (this.#options.singleFile) {
          await stageExecutable(archivePath, staging, this.#options.packageName ?? 'studio-worker', version);
          await writeFileAtomic(join(staging, INSTALLED_MARKER), `${JSON.stringify({ version, installedAt: new Date().toISOString() })}\n`, 0o644);
          await rm(dir, { recursive: true, force: true });
          await rename(staging, dir);
          return { version, dir, entry: await entryOf(dir, version) };
        }
        // node-tar is loaded when an update is unpacked, not in every idle daemon (~2.4 MB RSS).
        const { extractTarGz } = await import('./tar.ts');
        await extractTarGz(archivePath, staging);
        const manifest = await readManifest(staging, version);
        const expectedName = this.#options.packageName ?? 'studio-worker';
        if (manifest.name !== expectedName || manifest.version !== version) {
          throw new UpdateError('unsafe_archive', `the archive offered as ${expectedName} ${version} holds ${String(manifest.name)} ${String(manifest.version)}; the feed is wrong or tampered with`);
        }
        await entryOf(staging, version);
        if (Object.keys(manifest.dependencies ?? {}).length > 0) {
          // A release's devDependencies are its build tools and the monorepo's unpublished workspace
          // packages. npm resolves them even under --omit=dev when the package is the root project,
          // as here, and fails on those the registry lacks; an installed dependency never gets them.
          if ('devDependencies' in manifest) {
            const { devDependencies: _unused, ...runtime } = manifest;
            await writeFileAtomic(join(staging, 'package.json'), `${JSON.stringify(runtime, null, 2)}\n`, 0o644);
          }
          await this.#installDependencies(staging, version, signal);
        }
        await writeFileAtomic(join(staging, INSTALLED_MARKER), `${JSON.stringify({ version, installedAt: new Date().toISOString() })}\n`, 0o644);
        await rm(dir, { recursive: true, force: true });
        await rename(staging, dir);
      } catch (error) {
        await rm(staging, { recursive: true, force: true }).catch(() => {});
        if (error instanceof UpdateError) throw error;
        throw new UpdateError('local_io', `installing ${version} into ${dir} failed: ${errorText(error)}`, { cause: error });
      }
      return { version, dir, entry: await entryOf(dir, version) };
    });
  }

  async activate(version: string): Promise<CurrentPointer | null> {
    const previous = await readPointer(this.#paths.current);
    await mkdir(this.#paths.versions, { recursive: true });
    await writePointer(this.#paths.current, { version, previous: previous?.version ?? this.#options.currentVersion, switchedAt: new Date().toISOString() });
    return previous;
  }

  async restore(previous: CurrentPointer | null): Promise<void> {
    await writePointer(this.#paths.current, previous);
  }

  async prune(keep: readonly string[]): Promise<string[]> {
    return this.#locked(async () => {
      const removed: string[] = [];
      let names: string[];
      try {
        names = await readdir(this.#paths.versions);
      } catch {
        return removed;
      }
      const pointer = await readPointer(this.#paths.current);
      const kept = new Set([...keep, ...(pointer ? [pointer.version] : [])]);
      for (const name of names) {
        const isVersion = parseVersion(name)?.text === name;
        if ((isVersion && !kept.has(name)) || name.startsWith('.staging-')) {
          await rm(join(this.#paths.versions, name), { recursive: true, force: true });
          removed.push(name);
        }
      }
      if (this.#options.singleFile) removed.push(...(await this.#pruneUnpacked(kept)));
      return removed;
    });
  }

  /**
   * The payloads single files unpacked (`binary/<version>-<digest>/`) of versions no longer kept,
   * never the one this process runs from. A file whose folder went unpacks it again at its start.
   */
  async #pruneUnpacked(kept: ReadonlySet<string>): Promise<string[]> {
    const root = this.#paths.binaries;
    const running = await realpath(this.#options.packageRoot ?? OWN_PACKAGE_ROOT).catch(() => '');
    const removed: string[] = [];
    for (const name of await readdir(root).catch(() => [] as string[])) {
      // (`.tmp-<pid>` folders are left alone: another start of a file may be unpacking right now.)
      const version = /^(.+)-[0-9a-f]{16}$/.exec(name)?.[1];
      if (!version || kept.has(version) || join(root, name) === running) continue;
      await rm(join(root, name), { recursive: true, force: true });
      removed.push(`binary/${name}`);
    }
    return removed;
  }

  async #installDependencies(dir: string, version: string, signal?: AbortSignal): Promise<void> {
    const npm = this.#options.npm ?? npmInvocation();
    const hasLock = existsSync(join(dir, 'npm-shrinkwrap.json')) || existsSync(join(dir, 'package-lock.json'));
    // Scripts stay off: a release must not run code before its digest-checked files do, and the
    // worker's native dependencies ship prebuilt binaries.
    const args = [...npm.prefixArgs, hasLock ? 'ci' : 'install', '--omit=dev', '--ignore-scripts', '--no-audit', '--no-fund', ...(hasLock ? [] : ['--no-package-lock'])];
    this.#options.log.info({ op: 'auto_update', version, dir }, `installing the dependencies of ${version} (npm ${hasLock ? 'ci' : 'install'})`);
    const result = await this.#runner.run(npm.command, args, {
      cwd: dir,
      env: this.#options.env ?? npmEnvironment(),
      timeoutMs: this.#options.installTimeoutMs ?? 600_000,
      ...(signal ? { signal } : {}),
    });
    if (signal?.aborted) throw new UpdateError('cancelled', `installing the dependencies of ${version} stopped (the daemon is shutting down)`);
    if (result.code !== 0) {
      const how = result.code === null ? `was killed (${result.signal ?? 'timeout'})` : `exited with code ${result.code}`;
      const tail = (result.stderr.trim() || result.stdout.trim()).split('\n').slice(-OUTPUT_TAIL_LINES).join('\n');
      throw new UpdateError('install_failed', `npm ${args[npm.prefixArgs.length]} for ${version} ${how}${tail ? `:\n${tail}` : ''}`);
    }
  }

  /** One installer at a time per data dir (two workers of one user share it). */
  async #locked<T>(work: () => Promise<T>): Promise<T> {
    await mkdir(this.#paths.versions, { recursive: true });
    let lock: DaemonLock;
    try {
      lock = await DaemonLock.acquire(this.#paths.installLock, (pid) => `another studio-worker (pid ${pid}) is installing an update into ${this.#paths.versions}; trying again at the next check`);
    } catch (error) {
      if (error instanceof LockHeldError) throw new UpdateError('install_busy', error.message);
      throw new UpdateError('local_io', `cannot lock ${this.#paths.installLock}: ${errorText(error)}`, { cause: error });
    }
    try {
      return await work();
    } finally {
      lock.release();
    }
  }
}

/** The executable file formats a single-file release may be, by their first bytes. */
const EXECUTABLE_MAGIC: ReadonlyArray<[string, Buffer]> = [
  ['ELF', Buffer.from([0x7f, 0x45, 0x4c, 0x46])],
  ['PE', Buffer.from('MZ')],
  ['Mach-O', Buffer.from([0xcf, 0xfa, 0xed, 0xfe])],
];

/** A verified single-file release as `<staging>/studio-worker[.exe]` with a package.json naming it. */
async function stageExecutable(archivePath: string, staging: string, name: string, version: string): Promise<void> {
  const head = Buffer.alloc(4);
  const handle = await open(archivePath, 'r');
  try {
    await handle.read(head, 0, 4, 0);
  } finally {
    await handle.close();
  }
  if (!EXECUTABLE_MAGIC.some(([, magic]) => head.subarray(0, magic.length).equals(magic))) {
    throw new UpdateError(
      'unsafe_archive',
      `the release offered as ${version} is not an executable (ELF, PE or Mach-O), but this worker is a single file; point auto_update_feed at the feed of the single-file builds (docs/operations/release.md)`,
    );
  }
  const file = process.platform === 'win32' ? 'studio-worker.exe' : 'studio-worker';
  await mkdir(staging, { recursive: true });
  await copyFile(archivePath, join(staging, file));
  await chmod(join(staging, file), 0o755);
  const manifest = { name, version, description: 'A single-file studio-worker, installed by its auto-updater.', bin: { 'studio-worker': file } };
  await writeFileAtomic(join(staging, 'package.json'), `${JSON.stringify(manifest, null, 2)}\n`, 0o644);
}

interface Manifest {
  name?: unknown;
  version?: unknown;
  bin?: unknown;
  dependencies?: Record<string, string>;
}

async function readManifest(dir: string, version: string): Promise<Manifest> {
  try {
    return JSON.parse(await readFile(join(dir, 'package.json'), 'utf8')) as Manifest;
  } catch (error) {
    throw new UpdateError('unsafe_archive', `the archive of ${version} has no readable package.json: ${errorText(error)}`, { cause: error });
  }
}

/** The package's `studio-worker` bin (or its only bin), which must be a file inside `dir`. */
export async function entryOf(dir: string, version: string): Promise<string> {
  const manifest = await readManifest(dir, version);
  const bin = manifest.bin;
  const relative = typeof bin === 'string' ? bin : typeof bin === 'object' && bin !== null ? (bin as Record<string, unknown>)['studio-worker'] : undefined;
  if (typeof relative !== 'string') throw new UpdateError('unsafe_archive', `the package.json of ${version} names no "studio-worker" bin to start`);
  const root = resolve(dir);
  const entry = resolve(root, relative);
  if (!entry.startsWith(root + sep)) throw new UpdateError('unsafe_archive', `the bin of ${version} ("${relative}") points outside its package`);
  if (!(await stat(entry).then((info) => info.isFile(), () => false))) throw new UpdateError('unsafe_archive', `the bin of ${version} ("${relative}") is not in the archive`);
  return entry;
}

async function isComplete(dir: string, version: string): Promise<boolean> {
  try {
    const marker = JSON.parse(await readFile(join(dir, INSTALLED_MARKER), 'utf8')) as { version?: unknown };
    return marker.version === version;
  } catch {
    return false;
  }
}

/** How the running worker was installed, which decides whether it can update itself. */
export async function detectInstallKind(packageRoot: string, versionsDir: string): Promise<InstallKind> {
  const root = await realpath(packageRoot).catch(() => resolve(packageRoot));
  const versions = await realpath(versionsDir).catch(() => resolve(versionsDir));
  if (dirname(root) === versions) return { kind: 'versioned', version: root.slice(versions.length + 1) };
  // A package inside node_modules is an npm install, even when the project around it is a checkout.
  if (root.split(sep).includes('node_modules')) return { kind: 'package' };
  for (let dir = root; ; dir = dirname(dir)) {
    if (existsSync(join(dir, '.git'))) return { kind: 'git', root: dir };
    if (dirname(dir) === dir) return { kind: 'package' };
  }
}

