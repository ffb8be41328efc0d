// The Cloudflare host as one ES module for workerd: packages/studio/src/cloudflare/worker.ts (the
// Worker and its Durable Object class) with everything it imports inlined, and the dashboard's and
// the web kit's files bundled as a generated module (`studio-cf:files`), since a Worker has no disk.
//
//   node scripts/build-cf.ts [outDir]     default packages/studio/dist-cf; prints the bundle's size
//
// `node:*` imports stay imports: workerd provides them under the `nodejs_compat` compatibility flag
// (wrangler.jsonc). `cloudflare:*` and `workerd:*` are the runtime's own modules.
import { readdir, readFile } from 'node:fs/promises';
import { builtinModules } from 'node:module';
import { join, relative, resolve } from 'node:path';
import { fileURLToPath } from 'node:url';
import { build, type Plugin } from 'esbuild';
import { KIT_DIR } from '../packages/web-kit/src/index.ts';

const REPO_ROOT = resolve(fileURLToPath(new URL('..', import.meta.url)));
export const CF_ENTRY = join(REPO_ROOT, 'packages', 'studio', 'src', 'cloudflare', 'worker.ts');
export const CF_OUT_DIR = join(REPO_ROOT, 'packages', 'studio', 'dist-cf');
const WEB_DIR = join(REPO_ROOT, 'packages', 'studio', 'src', 'web');
const FILES_MODULE = 'studio-cf:files';

export interface CfBuild {
  /** The bundle: one ES module. */
  path: string;
  bytes: number;
  /** The dashboard + kit files inside it. */
  files: number;
}

export async function buildCloudflare(outDir = CF_OUT_DIR): Promise<CfBuild> {
  const path = join(outDir, 'worker.js');
  const files = { web: await filesUnder(WEB_DIR), kit: await filesUnder(KIT_DIR) };
  const result = await build({
    entryPoints: [CF_ENTRY],
    outfile: path,
    bundle: true,
    format: 'esm',
    platform: 'browser',
    target: 'es2024',
    conditions: ['workerd', 'worker', 'browser'],
    mainFields: ['browser', 'module', 'main'],
    external: ['node:*', 'cloudflare:*', 'workerd:*'],
    minify: false,
    sourcemap: false,
    legalComments: 'none',
    metafile: true,
    logLevel: 'warning',
    plugins: [filesModule(files), bareBuiltins()],
  });
  const bytes = Object.values(result.metafile.outputs).reduce((sum, output) => sum + output.bytes, 0);
  return { path, bytes, files: Object.keys(files.web).length + Object.keys(files.kit).length };
}

/** Every file under `dir`, by its `/`-separated path relative to `dir`, base64-encoded. */
async function filesUnder(dir: string): Promise<Record<string, string>> {
  const out: Record<string, string> = {};
  for (const entry of await readdir(dir, { recursive: true, withFileTypes: true })) {
    if (!entry.isFile()) continue;
    const full = join(entry.parentPath, entry.name);
    out[relative(dir, full).split('\\').join('/')] = (await readFile(full)).toString('base64');
  }
  return out;
}

/** `import { STATIC_FILES } from 'studio-cf:files'`: `{ web: {path: base64}, kit: {…} }`. */
function filesModule(files: { web: Record<string, string>; kit: Record<string, string> }): Plugin {
  return {
    name: 'studio-cf-files',
    setup(b) {
      b.onResolve({ filter: /^studio-cf:files$/ }, () => ({ path: FILES_MODULE, namespace: 'studio-cf-files' }));
      b.onLoad({ filter: /.*/, namespace: 'studio-cf-files' }, () => ({
        contents: `export const STATIC_FILES = ${JSON.stringify(files)};`,
        loader: 'js',
      }));
    },
  };
}

/**
 * CommonJS dependencies (prom-client) `require('util')` and friends. In an ES module bundle an
 * external `require` would be esbuild's throwing `__require` shim, so each bare built-in becomes a
 * small ES module re-exporting workerd's `node:` module (nodejs_compat provides every one
 * prom-client names, checked under workerd 2026-07-30), which the bundle then wraps for `require`.
 */
function bareBuiltins(): Plugin {
  const names = new Set(builtinModules.filter((name) => !name.startsWith('_') && !name.includes(':')));
  return {
    name: 'studio-cf-bare-builtins',
    setup(b) {
      b.onResolve({ filter: /^[a-z0-9_/]+$/ }, (args) => (names.has(args.path) ? { path: args.path, namespace: 'bare-builtin' } : undefined));
      b.onLoad({ filter: /.*/, namespace: 'bare-builtin' }, (args) => ({ contents: `export * from 'node:${args.path}';`, loader: 'js' }));
    },
  };
}

if (import.meta.main) {
  const built = await buildCloudflare(process.argv[2] ? resolve(process.argv[2]) : undefined);
  console.log(`${relative(process.cwd(), built.path)}: ${(built.bytes / 1024).toFixed(0)} KiB (${built.files} dashboard and kit files inside)`);
}
