import { existsSync } from 'node:fs';
import { isSea } from 'node:sea';
import { dirname, join } from 'node:path';
import { fileURLToPath } from 'node:url';
import { KIT_DIR as KIT_SOURCE_DIR } from '@studio-worker/web-kit';

// Where the worker's own files are. The same code runs from two layouts:
//   sources  packages/worker/src/**.ts   a checkout (Node strips the types)
//   bundle   <package>/dist/*.js         a published package or an installed version (Node refuses to
//                                        strip types under node_modules, so those run the esbuild output)
// Code that needs a file that ships with the worker (the web UI, a script it spawns) asks here
// instead of counting `..` from its own location, which differs between the two.

const here = import.meta.url;

/** True when this code runs from `dist/` (bundled JavaScript), false from the TypeScript sources. */
export const BUNDLED = !here.endsWith('.ts');

/** The worker package's folder: the nearest folder above this module with a package.json. */
export const PACKAGE_ROOT = packageRootAbove(dirname(fileURLToPath(here)));

/**
 * Entry points that run as their own process or are loaded by the bin. Each is bundled to
 * `dist/<name>.js` (scripts/build-worker.ts builds exactly this table).
 */
export const ENTRY_POINTS = {
  /** The CLI (`studio-worker …`), what the bin runs. */
  cli: 'src/cli/main.ts',
  /** The ONNX inference host, a child process of the daemon. */
  'onnx-host': 'src/engines/onnx/host.ts',
  /** A large synthetic render, a child process a cancel can kill. */
  'synthetic-render': 'src/engines/synthetic/render-child.ts',
  /** The launcher's decision (which installed version to run), loaded by the bin. */
  launch: 'src/update/launch.ts',
  /** The package's module API (`import … from 'studio-worker'`). */
  index: 'src/index.ts',
} as const;

export type EntryPointName = keyof typeof ENTRY_POINTS;

/** The file to run for an entry point in the layout this code runs from. */
export function entryPointFile(name: EntryPointName): string {
  return join(PACKAGE_ROOT, BUNDLED ? join('dist', `${name}.js`) : ENTRY_POINTS[name]);
}

/** The web UI's files (index.html and assets): `src/ui/`, copied to `dist/ui/` by the build. */
export const UI_DIR = join(PACKAGE_ROOT, BUNDLED ? 'dist' : 'src', 'ui');

/** The web kit the UI imports from `/kit/` (shared with the studio dashboard): copied to `dist/kit/` by the build. */
export const KIT_DIR = BUNDLED ? join(PACKAGE_ROOT, 'dist', 'kit') : KIT_SOURCE_DIR;

/**
 * The repository root when this code runs from a checkout of the studio-worker repository (the
 * sources, with `scripts/start.ts` two folders up), else undefined. There the CLI is run as
 * `npm run worker -- …` and its default config is the one `npm start` gives its local worker.
 */
export const CHECKOUT_ROOT = ((root: string) => (!BUNDLED && existsSync(join(root, 'scripts', 'start.ts')) ? root : undefined))(join(PACKAGE_ROOT, '..', '..'));

/** The `studio-worker` bin (service units and autostart entries start it, unless SINGLE_FILE). */
export const WORKER_BIN = join(PACKAGE_ROOT, 'bin', 'studio-worker.js');

/**
 * The executable when this worker runs as a single file (`npm run build:binaries`; the bundle runs
 * from where scripts/sea/bootstrap.cjs unpacked it): what a service starts, and what an update
 * replaces. Null under a plain Node.
 */
export const SINGLE_FILE: string | null = isSea() ? process.execPath : null;

function packageRootAbove(start: string): string {
  for (let dir = start; ; dir = dirname(dir)) {
    if (existsSync(join(dir, 'package.json'))) return dir;
    if (dirname(dir) === dir) throw new Error(`studio-worker: no package.json above ${start}; the package is incomplete, reinstall it`);
  }
}
