// state.json (what `studio-worker status` reads) is written after the turn in which something
// changed: the caller — a job whose engine just started, a frame that arrived — never waits for the
// snapshot and its JSON, and the changes of one turn are one write. `settled()` still waits for it.
import assert from 'node:assert/strict';
import { mkdtempSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { it } from 'node:test';
import { silentLogger } from '@studio-worker/log';
import { readDaemonState, StateFile } from '../src/daemon/state-file.ts';

it('changed() takes no snapshot in the caller\'s turn; one turn of changes is one write; settled() waits for it', async () => {
  const dir = mkdtempSync(join(tmpdir(), 'state-file-'));
  try {
    let snapshots = 0;
    let jobs = 0;
    const file = new StateFile(join(dir, 'state.json'), () => (snapshots++, { pid: process.pid, jobs } as never), silentLogger);
    for (jobs = 1; jobs <= 3; jobs++) file.changed();
    assert.equal(snapshots, 0, 'the snapshot waits for the next turn');
    await file.settled();
    assert.equal(snapshots, 1, 'three changes in one turn, one snapshot');
    const state = (await readDaemonState(join(dir, 'state.json'))) as unknown as { jobs: number } | null;
    assert.equal(state?.jobs, 4, 'the newest state is on disk');
    file.changed();
    await file.settled();
    assert.equal(snapshots, 2, 'a later change is written too');
  } finally {
    rmSync(dir, { recursive: true, force: true });
  }
});
