// @studio-worker/client as someone outside the repository gets it: `npm run build:client`, `npm pack
// -w @studio-worker/client`, `npm install <tgz> --offline` into a fresh project (its one dependency,
// zod, for the types, comes from npm's cache), then plain Node importing the package by name against
// a real studio, and the TypeScript checker reading the shipped declarations.
import assert from 'node:assert/strict';
import { execFile } from 'node:child_process';
import { existsSync } from 'node:fs';
import { mkdir, mkdtemp, readdir, readFile, writeFile } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { promisify } from 'node:util';
import { after, before, describe, it } from 'node:test';
import { silentLogger } from '@studio-worker/log';
import { startStudio, type RunningStudio } from '@studio-worker/studio/node';
import { buildClient, CLIENT_PACKAGE_DIR } from '../../../../scripts/build-client.ts';
import { mustNpm, npmPack, removeDir, REPO_ROOT } from '../../../worker/test/release/helpers/package.ts';

const run = promisify(execFile);
const TOKEN = 'client-release-token';
const TSC = join(REPO_ROOT, 'node_modules', 'typescript', 'bin', 'tsc');

describe('the published client, installed from its tarball', () => {
  let dir: string;
  let project: string;
  let installed: string;
  let studio: RunningStudio;

  before(
    async () => {
      dir = await mkdtemp(join(tmpdir(), 'studio-client-release-'));
      await buildClient();
      const tarball = await npmPack(REPO_ROOT, join(dir, 'packs'), ['-w', '@studio-worker/client']);
      project = join(dir, 'project');
      await mkdir(project, { recursive: true });
      await writeFile(join(project, 'package.json'), `${JSON.stringify({ name: 'client-release-project', private: true, type: 'module' }, null, 2)}\n`);
      // The tarball, and zod from npm's cache where it is there. Not `--offline`: on a fresh machine
      // `npm ci` caches tarballs but not zod's registry document, which resolving `zod@^4` needs
      // (ENOTCACHED when this test ran before any online install had fetched it).
      await mustNpm(['install', tarball, '--prefer-offline', '--no-audit', '--no-fund'], project);
      installed = join(project, 'node_modules', '@studio-worker', 'client');
      studio = await startStudio({ dataDir: join(dir, 'studio'), port: 0, host: '127.0.0.1', adminToken: TOKEN, log: silentLogger });
    },
    { timeout: 180_000 },
  );
  after(async () => {
    await studio?.close();
    await removeDir(dir);
  });

  it('ships the bundle, its types and the Node entry, no sources; the protocol is inlined and zod is the one dependency', async () => {
    const shipped = (await readdir(installed, { recursive: true })).filter((path) => !path.includes('node_modules')).sort();
    assert.ok(['dist/index.js', 'dist/index.d.ts', 'index.js', 'README.md'].every((file) => shipped.includes(file)), shipped.join('\n'));
    assert.deepEqual(shipped.filter((path) => path.startsWith('src') || path.startsWith('test') || path.includes('.tsbuild')), []);
    const manifest = JSON.parse(await readFile(join(installed, 'package.json'), 'utf8')) as { dependencies: Record<string, string> };
    assert.deepEqual(Object.keys(manifest.dependencies), ['zod']);
    assert.deepEqual((await readdir(join(project, 'node_modules'))).filter((name) => !name.startsWith('.')).sort(), ['@studio-worker', 'zod']);
    assert.deepEqual(await readdir(join(project, 'node_modules', '@studio-worker')), ['client']);
    const bundle = await readFile(join(installed, 'dist', 'index.js'), 'utf8');
    assert.doesNotMatch(bundle, /^import /m, 'the bundle imports nothing (Web APIs only)');
    assert.doesNotMatch(bundle, /zod/i, 'no schema code: the client needs none of it at run time');
  });

  it('exports the same names installed (index.js and dist/index.js) as its sources do', async () => {
    const sources = Object.keys(await import(join(CLIENT_PACKAGE_DIR, 'src', 'index.ts'))).sort();
    const script = `const a = await import('@studio-worker/client'); const b = await import(${JSON.stringify(join(installed, 'dist', 'index.js'))}); console.log(JSON.stringify([Object.keys(a).sort(), Object.keys(b).sort()]));`;
    const { stdout } = await run(process.execPath, ['--input-type=module', '-e', script], { cwd: project });
    assert.deepEqual(JSON.parse(stdout), [sources, sources]);
  });

  it('plain Node in the fresh project: health, one job created and read back from a real studio', async () => {
    await writeFile(
      join(project, 'use.js'),
      `import { StudioClient, StudioApiError } from '@studio-worker/client';
const client = new StudioClient({ url: process.argv[2], token: process.argv[3] });
const health = await client.health();
const { job } = await client.createJob({ model: 'synthetic-image', task: { kind: 'image', prompt: 'from a tarball' } }, { idempotencyKey: 'release-1' });
const again = await client.createJob({ model: 'synthetic-image', task: { kind: 'image', prompt: 'from a tarball' } }, { idempotencyKey: 'release-1' });
const read = await client.job(job.id);
let refused;
try { await new StudioClient({ url: process.argv[2], token: 'wrong' }).jobs(); } catch (error) { refused = error instanceof StudioApiError ? error.status : String(error); }
console.log(JSON.stringify({ health, id: job.id, replayed: again.replayed, sameId: again.job.id === job.id, read: { id: read.id, prompt: read.prompt, status: read.status }, refused }));
`,
    );
    const { stdout } = await run(process.execPath, ['use.js', studio.url, TOKEN], { cwd: project });
    const out = JSON.parse(stdout) as { health: { ok: boolean }; id: string; replayed: boolean; sameId: boolean; read: { id: string; prompt: string; status: string }; refused: number };
    assert.equal(out.health.ok, true);
    assert.deepEqual([out.replayed, out.sameId], [true, true]);
    assert.deepEqual(out.read, { id: out.id, prompt: 'from a tarball', status: 'queued' });
    assert.equal(out.refused, 401);
    // The studio holds exactly that one job.
    assert.deepEqual(studio.core.jobs.list({ limit: 10 }).jobs.map((j) => j.id), [out.id]);
  });

  it('its declarations type a consumer: right code checks, a wrong type is an error that names it', async () => {
    await writeFile(
      join(project, 'tsconfig.json'),
      JSON.stringify({ compilerOptions: { target: 'es2022', module: 'nodenext', moduleResolution: 'nodenext', strict: true, noEmit: true, lib: ['es2024', 'dom'], types: [] }, files: ['typed.ts'] }),
    );
    const typed = (line: string) =>
      writeFile(
        join(project, 'typed.ts'),
        `import { StudioClient, type JobView } from '@studio-worker/client';
const client = new StudioClient({ url: 'http://127.0.0.1:1', retries: 0 });
export async function f(): Promise<JobView> { const { job } = await client.createJob({ model: 'm', task: { kind: 'image', prompt: 'p' } }); ${line} return job; }
`,
      );
    await typed("const status: 'queued' | 'claimed' | 'running' | 'done' | 'failed' | 'cancelled' = job.status; void status;");
    await run(process.execPath, [TSC, '-p', project], { cwd: project }).catch((error: { stdout: string }) => assert.fail(`the consumer does not check:\n${error.stdout}`));
    await typed('const status: number = job.status; void status;');
    const wrong = await run(process.execPath, [TSC, '-p', project], { cwd: project }).then(
      () => assert.fail('a number is not a job status, yet the consumer checked'),
      (error: { stdout: string }) => error.stdout,
    );
    assert.match(wrong, /typed\.ts.*error TS2322/);
    assert.ok(existsSync(join(installed, 'dist', 'types', 'protocol', 'src', 'http.d.ts')));
  });
});
