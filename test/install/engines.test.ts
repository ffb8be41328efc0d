// `npm install` in a fresh clone warns about nothing: npm often runs on an older system Node (the
// project pins its own Node 24 as a dev dependency, which every `npm run` script uses), and an
// `engines` range on one of our own workspace packages made it print EBADENGINE twice.
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
    assert.doesNotMatch(`${run.stdout}\n${run.stderr}`, /EBADENGINE/, `system node ${version.stdout.trim()}`);
  } finally {
    rmSync(dir, { recursive: true, force: true });
  }
});
