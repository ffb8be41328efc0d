// A Durable Object cannot refuse to start over a bad setting (every request would fail), but it must
// not take one silently either: the Node studio exits on STUDIO_RETENTION_DAYS=thirty, and the
// Cloudflare host used to keep results forever without a word. Each numeric setting that is set but
// not a positive number is named in an error log line, with what applies instead.
import assert from 'node:assert/strict';
import { mkdtempSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { after, before, it } from 'node:test';
import { startStudioProcess, type StudioProc } from '../../helpers/processes.ts';
import { waitFor } from '../../helpers/wait.ts';

let dir: string;
let studio: StudioProc;

before(async () => {
  dir = mkdtempSync(join(tmpdir(), 'e2e-cf-settings-'));
  studio = await startStudioProcess({
    dataDir: join(dir, 'studio'),
    host: 'cloudflare',
    env: { STUDIO_RETENTION_DAYS: 'thirty', STUDIO_MAX_ATTEMPTS: '-2', STUDIO_LEASE_SECONDS: '' },
  });
});

after(async () => {
  await studio?.stop();
  rmSync(dir, { recursive: true, force: true });
});

it('a numeric setting that is not a positive number is named in the log, with what applies instead', { timeout: 60_000 }, async () => {
  // The object starts on the first request that reaches it. Log lines are JSON (quotes escaped).
  assert.deepEqual(await studio.api.workers(), []);
  await waitFor('the object to name STUDIO_RETENTION_DAYS', async () => /STUDIO_RETENTION_DAYS must be a positive number \(got \\?"thirty\\?"\)/.test(studio.proc.output));
  assert.match(studio.proc.output, /STUDIO_RETENTION_DAYS[^\n]*results are kept forever/);
  assert.match(studio.proc.output, /STUDIO_MAX_ATTEMPTS must be a positive number \(got \\?"-2\\?"\)/);
  // Unset (or empty) is not a mistake: the default, and nothing said.
  assert.doesNotMatch(studio.proc.output, /STUDIO_LEASE_SECONDS must/);
  const health = await fetch(`${studio.url}/graphics/api/health`);
  assert.equal(health.status, 200, 'the studio serves on');
});
