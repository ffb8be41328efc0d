// `npm run build:client`: @studio-worker/client as a package others can install (`npm pack -w
// @studio-worker/client`), like the worker (scripts/build-worker.ts):
//
//   packages/client/dist/index.js     one ESM bundle, Web APIs only (Node, browsers, Workers). The
//                                     protocol package is inlined: the client takes one value from
//                                     it (API_PREFIX) and types, so the bundle holds no zod (~8 KB).
//   packages/client/dist/index.d.ts   the types, from TypeScript's own declaration emit (tsgo, TS 7)
//   packages/client/dist/types/       of the client and the protocol sources they come from. The
//                                     protocol's types are `z.infer` of its schemas (never written
//                                     twice), so the declarations import `zod`: it is the client's
//                                     one dependency, for types only (the bundle never imports it).
//
// In a checkout, `packages/client/index.js` runs the TypeScript sources and tsconfig's `paths` send
// the type checker there too; installed, both land in dist/.
import { mkdir, readdir, readFile, rm, writeFile } from 'node:fs/promises';
import { execFile } from 'node:child_process';
import { join, resolve } from 'node:path';
import { fileURLToPath } from 'node:url';
import { promisify } from 'node:util';
import { build, type Plugin } from 'esbuild';

const REPO_ROOT = resolve(fileURLToPath(new URL('..', import.meta.url)));
export const CLIENT_PACKAGE_DIR = join(REPO_ROOT, 'packages', 'client');
const PACKAGES_DIR = join(REPO_ROOT, 'packages');
const INLINED_SCOPE = '@studio-worker/';

export interface ClientBuild {
  outDir: string;
  /** The bundle's size in bytes. */
  bytes: number;
}

/** Builds packages/client/dist (emptied first); a failed build leaves no dist behind. */
export async function buildClient(): Promise<ClientBuild> {
  const outDir = join(CLIENT_PACKAGE_DIR, 'dist');
  await rm(outDir, { recursive: true, force: true });
  try {
    const bytes = await bundle(outDir);
    await declarations(outDir);
    return { outDir, bytes };
  } catch (error) {
    await rm(outDir, { recursive: true, force: true });
    throw error;
  }
}

async function bundle(outDir: string): Promise<number> {
  const result = await build({
    entryPoints: [join(CLIENT_PACKAGE_DIR, 'src', 'index.ts')],
    outfile: join(outDir, 'index.js'),
    bundle: true,
    format: 'esm',
    // Web APIs only: a `node:` import would make the build fail here instead of in a browser.
    platform: 'neutral',
    target: 'es2022',
    keepNames: true,
    metafile: true,
    logLevel: 'silent',
    plugins: [sideEffectFreeProtocol()],
  });
  const [output] = Object.values(result.metafile.outputs);
  const left = output?.imports.map((imported) => imported.path) ?? [];
  if (left.length > 0) throw new Error(`the client bundle still imports ${left.join(', ')}; it must be self-contained (Web APIs only)`);
  return output?.bytes ?? 0;
}

/**
 * The protocol's modules only define schemas and constants: marking them free of side effects lets
 * esbuild drop every schema the client does not call (all of them), and zod with them.
 */
function sideEffectFreeProtocol(): Plugin {
  return {
    name: 'side-effect-free-protocol',
    setup(b) {
      b.onResolve({ filter: /^@studio-worker\/protocol$/ }, () => ({ path: join(PACKAGES_DIR, 'protocol', 'src', 'index.ts'), sideEffects: false }));
      b.onResolve({ filter: /^\.\.?\// }, (args) => (args.importer.startsWith(join(PACKAGES_DIR, 'protocol')) ? { path: resolve(args.resolveDir, args.path), sideEffects: false } : undefined));
    },
  };
}

async function declarations(outDir: string): Promise<void> {
  const typesDir = join(outDir, 'types');
  const tmp = join(outDir, '.tsbuild');
  await mkdir(tmp, { recursive: true });
  const config = {
    extends: join(REPO_ROOT, 'tsconfig.json'),
    compilerOptions: {
      noEmit: false,
      declaration: true,
      emitDeclarationOnly: true,
      outDir: typesDir,
      rootDir: PACKAGES_DIR,
      // The client's public types need the DOM's fetch types, never Node's.
      types: [],
      lib: ['es2024', 'dom'],
      paths: { [`${INLINED_SCOPE}protocol`]: [join(PACKAGES_DIR, 'protocol', 'src', 'index.ts')] },
    },
    include: [],
    files: [join(CLIENT_PACKAGE_DIR, 'src', 'index.ts')],
  };
  await writeFile(join(tmp, 'tsconfig.json'), JSON.stringify(config));
  try {
    await promisify(execFile)(process.execPath, [join(REPO_ROOT, 'node_modules', 'typescript', 'bin', 'tsc'), '-p', join(tmp, 'tsconfig.json')]);
  } catch (error) {
    const { stdout = '', stderr = '' } = error as { stdout?: string; stderr?: string };
    throw new Error(`declaration emit failed:\n${stdout}${stderr}`);
  }
  await rm(tmp, { recursive: true, force: true });
  // Declarations keep the sources' specifiers: `./x.ts` becomes `./x.js` (which a consumer resolves
  // to x.d.ts), and the inlined protocol package becomes its emitted folder.
  for (const entry of await readdir(typesDir, { recursive: true, withFileTypes: true })) {
    if (!entry.isFile() || !entry.name.endsWith('.d.ts')) continue;
    const file = join(entry.parentPath, entry.name);
    const fromClient = entry.parentPath.startsWith(join(typesDir, 'client'));
    const text = (await readFile(file, 'utf8'))
      .replace(/(from\s+'\.{1,2}\/[^']+)\.ts'/g, "$1.js'")
      .replace(new RegExp(`from '${INLINED_SCOPE}protocol'`, 'g'), fromClient ? "from '../../protocol/src/index.js'" : '$&');
    if (text.includes(`'${INLINED_SCOPE}`)) throw new Error(`${file} still refers to a workspace package`);
    await writeFile(file, text);
  }
  await writeFile(join(outDir, 'index.d.ts'), "export * from './types/client/src/index.js';\n");
}

if (import.meta.main) {
  const built = await buildClient();
  process.stdout.write(`built ${built.outDir} (bundle ${(built.bytes / 1024).toFixed(1)} KB, types in dist/types)\n`);
}
