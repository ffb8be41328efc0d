// `npm run build`: the worker as plain JavaScript in packages/worker/dist/, for the published package
// and the PM2 stable variant. Node strips TypeScript types, but never under node_modules
// (ERR_UNSUPPORTED_NODE_MODULES_TYPE_STRIPPING), so an installed studio-worker runs this bundle, not
// its sources. See docs/operations/release.md.
//
//   dist/cli.js, onnx-host.js, launch.js, index.js   one bundle per entry point (ENTRY_POINTS), ESM
//   dist/<chunk>-<hash>.js                           code the entry points share
//   dist/ui/                                         the web UI, copied from src/ui/
//   dist/kit/                                        the web kit the UI imports from /kit/, copied from
//                                                    packages/web-kit/browser/ (shared with the studio dashboard)
//
// The workspace packages (@studio-worker/protocol, @studio-worker/log, @studio-worker/web-kit) are inlined: they are not
// published. Every other package stays an import, and must be in the worker's `dependencies`; the
// build fails when one is not, so a release cannot ship an import that npm will not install.
import { createHash, randomBytes } from 'node:crypto';
import { cp, mkdir, readdir, readFile, rename, rm, stat, writeFile } from 'node:fs/promises';
import { isBuiltin } from 'node:module';
import { join, relative, resolve } from 'node:path';
import { fileURLToPath } from 'node:url';
import { build, type Metafile, type Plugin } from 'esbuild';
import { DaemonLock, LockHeldError } from '../packages/worker/src/platform/lock.ts';
import { ENTRY_POINTS } from '../packages/worker/src/package-layout.ts';
import { KIT_DIR } from '../packages/web-kit/src/index.ts';

const REPO_ROOT = resolve(fileURLToPath(new URL('..', import.meta.url)));
export const WORKER_PACKAGE_DIR = join(REPO_ROOT, 'packages', 'worker');
/** Packages inlined into the bundle (the monorepo's own, never published). */
const INLINED_SCOPE = '@studio-worker/';

export interface BuildOptions {
  /** Where the bundle goes; default `packages/worker/dist`. Emptied first. */
  outDir?: string;
  /** Progress lines; default: none. */
  log?: (line: string) => void;
  /** The worker package to build; default packages/worker (tests build altered copies). */
  packageDir?: string;
}

export interface BuildResult {
  outDir: string;
  /** The files written, relative to outDir, sorted (the UI's files included). */
  files: string[];
  /** npm packages the bundle imports at run time, sorted. */
  externals: string[];
  bytes: number;
}

/** A build that must not ship; the message says what to fix. */
export class BuildError extends Error {
  override name = 'BuildError';
  readonly code: 'undeclared_dependency' | 'workspace_import_left' | 'bundle_failed';

  constructor(code: BuildError['code'], message: string, options?: ErrorOptions) {
    super(message, options);
    this.code = code;
  }
}

export async function buildWorker(options: BuildOptions = {}): Promise<BuildResult> {
  const outDir = resolve(options.outDir ?? join(WORKER_PACKAGE_DIR, 'dist'));
  try {
    return await buildInto(outDir, options);
  } catch (error) {
    // A refused or failed build leaves no outDir behind that could be shipped by mistake.
    await rm(outDir, { recursive: true, force: true });
    throw error;
  }
}

async function buildInto(outDir: string, options: BuildOptions): Promise<BuildResult> {
  const packageDir = resolve(options.packageDir ?? WORKER_PACKAGE_DIR);
  const manifest = JSON.parse(await readFile(join(packageDir, 'package.json'), 'utf8')) as { dependencies?: Record<string, string>; optionalDependencies?: Record<string, string> };
  const declared = new Set([...Object.keys(manifest.dependencies ?? {}), ...Object.keys(manifest.optionalDependencies ?? {})]);

  await rm(outDir, { recursive: true, force: true });
  await mkdir(outDir, { recursive: true });
  let metafile: Metafile;
  try {
    const result = await build({
      absWorkingDir: packageDir,
      entryPoints: Object.fromEntries(Object.entries(ENTRY_POINTS).map(([name, source]) => [name, join(packageDir, source)])),
      outdir: outDir,
      bundle: true,
      // Shared code lives once, in chunks beside the entry points (module state is never duplicated).
      splitting: true,
      chunkNames: '[name]-[hash]',
      format: 'esm',
      platform: 'node',
      target: 'node24',
      // Class and function names survive (log lines and errors print them).
      keepNames: true,
      minify: false,
      sourcemap: false,
      metafile: true,
      logLevel: 'silent',
      plugins: [externalPackages()],
    });
    metafile = result.metafile;
  } catch (error) {
    throw new BuildError('bundle_failed', `esbuild could not bundle the worker: ${error instanceof Error ? error.message : String(error)}`, { cause: error });
  }

  const externals = new Set<string>();
  for (const [file, output] of Object.entries(metafile.outputs)) {
    for (const imported of output.imports) {
      if (!imported.external || isBuiltin(imported.path)) continue;
      if (imported.path.startsWith(INLINED_SCOPE)) throw new BuildError('workspace_import_left', `${file} still imports ${imported.path}; workspace packages must be inlined`);
      externals.add(packageName(imported.path));
    }
  }
  const undeclared = [...externals].filter((name) => !declared.has(name));
  if (undeclared.length > 0) {
    throw new BuildError(
      'undeclared_dependency',
      `the worker imports ${undeclared.join(', ')}, but ${relative(REPO_ROOT, join(packageDir, 'package.json'))} does not list ${undeclared.length === 1 ? 'it' : 'them'} in "dependencies"; ` +
        'an installed studio-worker would fail on that import. Add it with `npm i -w studio-worker <package>`',
    );
  }

  await cp(join(packageDir, 'src', 'ui'), join(outDir, 'ui'), { recursive: true });
  // Where package-layout's KIT_DIR points in a bundled worker.
  await cp(KIT_DIR, join(outDir, 'kit'), { recursive: true });
  const files = await listFiles(outDir);
  let bytes = 0;
  for (const file of files) bytes += (await stat(join(outDir, file))).size;
  options.log?.(`built ${relative(process.cwd(), outDir) || '.'}: ${files.length} files, ${(bytes / 1024).toFixed(0)} KiB; external packages: ${[...externals].sort().join(', ')}`);
  return { outDir, files, externals: [...externals].sort(), bytes };
}

/** The sources a bundle is made of; their digest is the build's stamp. */
const SOURCE_DIRS = ['packages/worker/src', 'packages/protocol/src', 'packages/log/src', 'packages/web-kit/src', 'packages/web-kit/browser'];
const SOURCE_FILES = ['packages/worker/package.json', 'scripts/build-worker.ts'];
const STAMP_FILE = '.build-stamp';

/** sha256 over the paths and contents of every file the bundle is built from. */
export async function sourcesDigest(): Promise<string> {
  const hash = createHash('sha256');
  const files = [...SOURCE_FILES];
  for (const dir of SOURCE_DIRS) files.push(...(await listFiles(join(REPO_ROOT, dir))).map((file) => `${dir}/${file}`));
  for (const file of files.sort()) {
    hash.update(`${file}\0`);
    hash.update(await readFile(join(REPO_ROOT, file)));
    hash.update('\0');
  }
  return hash.digest('hex');
}

/**
 * `packages/worker/dist` as the sources are now: built when its stamp differs from their digest,
 * left alone otherwise (tests and the PM2 stable variant call this; `npm run build` always builds).
 * Callers at once (test files run in parallel) take turns on `dist.lock`; the bundle is built beside
 * dist/ and swapped in by rename, so nobody ever runs from a half-written dist/.
 */
export async function ensureWorkerBuilt(options: Pick<BuildOptions, 'log'> & { waitMs?: number } = {}): Promise<{ outDir: string; built: boolean }> {
  const outDir = join(WORKER_PACKAGE_DIR, 'dist');
  const lock = await takeBuildLock(`${outDir}.lock`, options.waitMs ?? 300_000);
  try {
    const digest = await sourcesDigest();
    const stamp = await readFile(join(outDir, STAMP_FILE), 'utf8').catch(() => '');
    if (stamp.trim() === digest) return { outDir, built: false };
    const suffix = randomBytes(4).toString('hex');
    const fresh = `${outDir}.building-${suffix}`;
    const old = `${outDir}.old-${suffix}`;
    try {
      await buildWorker({ outDir: fresh, ...(options.log ? { log: options.log } : {}) });
      await writeFile(join(fresh, STAMP_FILE), `${digest}\n`);
      await rename(outDir, old).catch((error: NodeJS.ErrnoException) => {
        if (error.code !== 'ENOENT') throw error;
      });
      await rename(fresh, outDir);
    } finally {
      await rm(fresh, { recursive: true, force: true });
      await rm(old, { recursive: true, force: true });
    }
    return { outDir, built: true };
  } finally {
    lock.release();
  }
}

/** The build lock, waiting while another live process builds (a dead holder's lock is taken over). */
async function takeBuildLock(path: string, waitMs: number): Promise<DaemonLock> {
  const deadline = Date.now() + waitMs;
  for (;;) {
    try {
      return await DaemonLock.acquire(path, (pid) => `process ${pid} is building ${path.replace(/\.lock$/, '')}`);
    } catch (error) {
      if (!(error instanceof LockHeldError) || Date.now() > deadline) throw error;
      // A build takes seconds; polling its lock file is the simplest wait across processes.
      await new Promise((resolve) => setTimeout(resolve, 250));
    }
  }
}

/** Bare imports stay imports, except the workspace's own packages, which are bundled. */
function externalPackages(): Plugin {
  return {
    name: 'studio-worker-externals',
    setup(build) {
      build.onResolve({ filter: /^[^./]/ }, (args) => {
        if (args.path.startsWith(INLINED_SCOPE)) return undefined;
        return { path: args.path, external: true };
      });
    },
  };
}

/** `@scope/name/sub/path` → `@scope/name`; `name/sub` → `name`. */
export function packageName(specifier: string): string {
  const parts = specifier.split('/');
  return specifier.startsWith('@') ? parts.slice(0, 2).join('/') : (parts[0] ?? specifier);
}

async function listFiles(dir: string, prefix = ''): Promise<string[]> {
  const out: string[] = [];
  for (const entry of await readdir(join(dir, prefix), { withFileTypes: true })) {
    const path = prefix ? `${prefix}/${entry.name}` : entry.name;
    if (entry.isDirectory()) out.push(...(await listFiles(dir, path)));
    else out.push(path);
  }
  return out.sort();
}

if (import.meta.main) {
  try {
    const { outDir } = await buildWorker({ log: (line) => process.stdout.write(`${line}\n`) });
    // Stamped like ensureWorkerBuilt's, so the tests and the PM2 stable variant reuse this build.
    await writeFile(join(outDir, STAMP_FILE), `${await sourcesDigest()}\n`);
  } catch (error) {
    process.stderr.write(`build-worker: ${error instanceof Error ? error.message : String(error)}\n`);
    process.exitCode = 1;
  }
}
