// scripts/build-worker.ts: the bundle a published studio-worker runs (Node refuses to strip types
// under node_modules). Built into temp dirs; packages/worker/dist is left to ensureWorkerBuilt.
import assert from 'node:assert/strict';
import { execFile } from 'node:child_process';
import { existsSync } from 'node:fs';
import { cp, mkdtemp, readFile, rm, writeFile } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { promisify } from 'node:util';
import { after, before, describe, it } from 'node:test';
import { BuildError, buildWorker, packageName, type BuildResult } from '../../../../scripts/build-worker.ts';
import { ENTRY_POINTS } from '../../src/package-layout.ts';
import { linkRepoNodeModules, stagePackage, workerManifest, WORKER_DIR } from './helpers/package.ts';

const run = promisify(execFile);

describe('the worker bundle (npm run build)', () => {
  let dir: string;
  let result: BuildResult;
  /** A published package made of this build, its npm packages linked from the repository's. */
  let staged: string;

  before(
    async () => {
      dir = await mkdtemp(join(tmpdir(), 'studio-worker-build-'));
      result = await buildWorker({ outDir: join(dir, 'dist') });
      staged = await stagePackage(join(dir, 'staged'), { dist: result.outDir });
      await linkRepoNodeModules(staged);
    },
    { timeout: 120_000 },
  );
  after(async () => {
    await rm(dir, { recursive: true, force: true });
  });

  it('writes one file per entry point and the web UI; imports only declared npm packages', async () => {
    for (const name of Object.keys(ENTRY_POINTS)) assert.ok(result.files.includes(`${name}.js`), `dist/${name}.js`);
    assert.ok(result.files.includes('ui/index.html'));
    assert.ok(result.files.includes('kit/dom.js'), 'the web kit the UI imports from /kit/ ships beside it');
    const { dependencies = {} } = await workerManifest();
    assert.ok(result.externals.length > 0);
    for (const external of result.externals) assert.ok(external in dependencies, `${external} is a dependency`);
    assert.ok(!result.externals.some((name) => name.startsWith('@studio-worker/')), 'the workspace packages are inlined');
    for (const file of result.files.filter((name) => name.endsWith('.js'))) {
      assert.doesNotMatch(await readFile(join(result.outDir, file), 'utf8'), /from ["']@studio-worker\//, `${file} imports no workspace package`);
    }
  });

  it('index.js (the package API) names exactly what src/index.ts exports, and the bundle provides them', async () => {
    const source = await readFile(join(WORKER_DIR, 'src', 'index.ts'), 'utf8');
    const exported = new Set<string>();
    for (const match of source.matchAll(/export \{([^}]+)\}/g)) {
      for (const part of (match[1] ?? '').split(',')) {
        const name = part.trim();
        if (name && !name.startsWith('type ')) exported.add(name);
      }
    }
    const wrapper = await readFile(join(WORKER_DIR, 'index.js'), 'utf8');
    const listed = new Set(
      (/export const \{([^}]+)\}/.exec(wrapper)?.[1] ?? '')
        .split(',')
        .map((name) => name.trim())
        .filter(Boolean),
    );
    assert.deepEqual([...listed].sort(), [...exported].sort());
    const bundle = (await import(join(staged, 'index.js'))) as Record<string, unknown>;
    for (const name of exported) assert.notEqual(bundle[name], undefined, `dist/index.js exports ${name}`);
  });

  it('runs outside the repository: the CLI answers `version` and `--help`', async () => {
    const { version } = await workerManifest();
    const env = { ...process.env, NO_PRETTY_LOGS: '1' };
    const shown = await run(process.execPath, [join(staged, 'bin', 'studio-worker.js'), 'version'], { env });
    assert.equal(shown.stdout.trim(), `studio-worker ${version}`);
    const help = await run(process.execPath, [join(staged, 'bin', 'studio-worker.js'), '--help'], { env });
    assert.match(help.stdout, /install-service/);
  });

  it('refuses to ship an import that npm would not install (an undeclared dependency)', async () => {
    // A copy of the worker package whose manifest lacks one of the packages the code imports.
    const copy = join(dir, 'undeclared');
    // Only what a build reads (the sources and the manifest): dist/ and its lock change under
    // other test files that build at the same time.
    await cp(join(WORKER_DIR, 'src'), join(copy, 'src'), { recursive: true });
    const manifest = await workerManifest();
    const { commander: _dropped, ...rest } = manifest.dependencies ?? {};
    await writeFile(join(copy, 'package.json'), JSON.stringify({ ...manifest, dependencies: rest }));
    await linkRepoNodeModules(copy);
    await assert.rejects(buildWorker({ outDir: join(dir, 'undeclared-dist'), packageDir: copy }), (error: unknown) => {
      assert.ok(error instanceof BuildError);
      assert.equal(error.code, 'undeclared_dependency');
      assert.match(error.message, /imports commander, but .* does not list it in "dependencies".*npm i -w studio-worker <package>/s);
      return true;
    });
    assert.equal(existsSync(join(dir, 'undeclared-dist', 'ui')), false, 'nothing half-built is left to ship');
  });

  it('names the package of a deep or scoped import', () => {
    assert.equal(packageName('sharp'), 'sharp');
    assert.equal(packageName('pino/file'), 'pino');
    assert.equal(packageName('@scope/name/sub/path'), '@scope/name');
  });
});
