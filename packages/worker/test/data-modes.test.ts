// Issue 9: what the worker keeps about its jobs and its studio (tokens, prompts in the catalogue and
// the outbox, state) is for its own user only: every file it writes in its config dir is 0600 and
// every directory 0700, whatever the umask.
import assert from 'node:assert/strict';
import { readdir, stat } from 'node:fs/promises';
import { join } from 'node:path';
import { describe, it } from 'node:test';
import { offerFrame } from './helpers/fake-studio.ts';
import { useScenarios } from './helpers/scenario.ts';

async function modes(dir: string): Promise<Array<[string, number, 'file' | 'dir']>> {
  const found: Array<[string, number, 'file' | 'dir']> = [];
  for (const entry of await readdir(dir, { withFileTypes: true, recursive: true })) {
    const path = join(entry.parentPath, entry.name);
    const info = await stat(path);
    found.push([path.slice(dir.length + 1), info.mode & 0o777, info.isDirectory() ? 'dir' : 'file']);
  }
  return found;
}

describe('worker data files', () => {
  const scenario = useScenarios();

  it('everything the daemon writes in its config dir is readable by its user only', async () => {
    const { studio, config, start } = await scenario();
    // The daemon inherits a umask that masks nothing: only modes set on purpose survive.
    const umask = process.umask(0);
    let daemon;
    try {
      daemon = start();
    } finally {
      process.umask(umask);
    }
    const connection = await studio.ready(0);
    connection.send(offerFrame({ jobId: 'private-prompt', attempt: 1 }));
    await connection.jobFrame('completeJson', 'private-prompt');
    assert.equal((await daemon.stop()).code, 0);

    const found = (await modes(config.dir)).filter(([path]) => !path.startsWith('models'));
    const names = found.map(([path]) => path);
    for (const expected of ['config.toml', 'state.json', 'outbox', 'logs/daemon.log']) assert.ok(names.includes(expected), `${expected} in ${names.join(', ')}`);
    for (const [path, mode, kind] of found) assert.equal(mode, kind === 'dir' ? 0o700 : 0o600, `${path} is ${mode.toString(8)}`);
  });
});
