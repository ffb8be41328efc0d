// `npm install` in a fresh clone warns about no engine of ours: npm often runs on an older system
// Node (the project pins its own Node 24 as a dev dependency, which every `npm run` script uses),
// and an `engines` range on one of our own workspace packages made it print EBADENGINE twice. The
// one exception, said in README.md and docs/operations/release.md: miniflare (the Cloudflare
// host's local runtime, a dev dependency) declares node >=22 since 4.20260430, and the versions
// before it lack the Durable Object eviction the tests need; it only ever runs on the pinned Node 24.
import assert from 'node:assert/strict';
import { spawnSync } from 'node:child_process';
import { cpSync, mkdirSync, mkdtempSync, readdirSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { delimiter, join } from 'node:path';
import { test } from 'node:test';
import { ROOT } from '../helpers/processes.ts';

const WORKSPACES = readdirSync(join(ROOT, 'packages'));

/** PATH without the project's pinned Node: what a newcomer's shell runs npm with. */
function systemPath(): string {
  return (process.env.PATH ?? '')
    .split(delimiter)
    .filter((dir) => !dir.includes('node_modules'))
    .join(delimiter);
}

test('npm ci in a fresh copy of the manifests prints no EBADENGINE (with the system Node npm runs on)', { timeout: 120_000 }, (t) => {
  const version = spawnSync('node', ['--version'], { encoding: 'utf8', env: { ...process.env, PATH: systemPath() } });
  if (version.status !== 0) return t.skip('no system node on PATH');
  const dir = mkdtempSync(join(tmpdir(), 'engines-'));
  try {
    for (const file of ['package.json', 'package-lock.json']) cpSync(join(ROOT, file), join(dir, file));
    for (const name of WORKSPACES) {
      mkdirSync(join(dir, 'packages', name), { recursive: true });
      cpSync(join(ROOT, 'packages', name, 'package.json'), join(dir, 'packages', name, 'package.json'));
    }
    const run = spawnSync('npm', ['ci', '--dry-run', '--ignore-scripts', '--no-audit', '--no-fund'], {
      cwd: dir,
      encoding: 'utf8',
      env: { ...process.env, PATH: systemPath(), npm_config_loglevel: 'warn' },
    });
    assert.equal(run.status, 0, `${run.stdout}\n${run.stderr}`);
    const output = `${run.stdout}\n${run.stderr}`;
    const warned = [...output.matchAll(/EBADENGINE +package: '([^']+)'/g)].map((m) => (m[1] as string).replace(/@[^@]+$/, ''));
    assert.deepEqual(warned.filter((name) => name !== 'miniflare'), [], `system node ${version.stdout.trim()}:\n${output}`);
  } finally {
    rmSync(dir, { recursive: true, force: true });
  }
});
