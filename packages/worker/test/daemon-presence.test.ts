// only_when_idle and pause_when_gpu_busy on a real daemon process (issue 13): the user-presence probe
// (`xprintidle`) and the GPU tool (`nvidia-smi`) are stand-in executables on PATH whose answers the
// test changes by rewriting a file.
import assert from 'node:assert/strict';
import { chmod, mkdir, writeFile } from 'node:fs/promises';
import { join } from 'node:path';
import { describe, it } from 'node:test';
import { offerFrame } from './helpers/fake-studio.ts';
import { useScenarios } from './helpers/scenario.ts';
import { Api } from './local-api/harness.ts';

/** An executable `name` in `dir` that prints the file `answerFile` (for nvidia-smi: per query). */
async function standIn(dir: string, name: string, body: string): Promise<void> {
  await mkdir(dir, { recursive: true });
  const path = join(dir, name);
  await writeFile(path, `#!/bin/sh\n${body}\n`);
  await chmod(path, 0o755);
}

describe('user presence and a shared GPU (real daemon, stand-in probes)', { skip: process.platform !== 'linux' && 'stand-in probes are shell scripts for the Linux probes' }, () => {
  const scenario = useScenarios();

  it('only_when_idle on Linux: active user → offers rejected as paused and userPresence active; idle → the job runs; active again → paused', async () => {
    const { studio, config, start } = await scenario({ extra: 'only_when_idle = true\nidle_after_secs = 120', timings: { presence_sample_ms: 50 } });
    const bin = join(config.dir, 'bin');
    const idleFile = join(config.dir, 'idle-ms');
    await writeFile(idleFile, '1500');
    await standIn(bin, 'xprintidle', `cat '${idleFile}'`);
    const daemon = start({ env: { PATH: `${bin}:${process.env.PATH}`, DISPLAY: ':77' } });
    const connection = await studio.ready(0);

    await connection.frame((f) => f.type === 'heartbeat' && f.capabilities.userPresence === 'active', 'a heartbeat saying the user is active');
    connection.send(offerFrame({ jobId: 'while-active' }));
    const reject = await connection.jobFrame('reject', 'while-active');
    assert.equal(reject.code, 'paused');
    assert.match(reject.reason, /only_when_idle is on and the user is active \(idle 2 s, idle_after_secs = 120\)/);

    await writeFile(idleFile, String(10 * 60 * 1000));
    await connection.frame((f) => f.type === 'heartbeat' && f.capabilities.userPresence === 'idle', 'a heartbeat saying the user is idle', { after: connection.frames.length });
    connection.send(offerFrame({ jobId: 'while-idle' }));
    await connection.jobFrame('accept', 'while-idle');
    await connection.jobFrame('completeJson', 'while-idle');
    const api = await Api.of(daemon);
    const status = (await api.get('/daemon/status')).json;
    assert.deepEqual(status.presence, { presence: 'idle', idleSecs: 600, source: 'xprintidle' });

    await writeFile(idleFile, '10');
    await connection.frame((f) => f.type === 'heartbeat' && f.capabilities.userPresence === 'active', 'active again', { after: connection.frames.length });
    connection.send(offerFrame({ jobId: 'back-at-the-desk' }));
    assert.equal((await connection.jobFrame('reject', 'back-at-the-desk')).code, 'paused');
    assert.equal((await daemon.stop()).code, 0);
  });

  it('pause_when_gpu_busy: another program on the GPU pauses the worker between jobs and it resumes after; VRAM per GPU in status', async () => {
    const { studio, config, start } = await scenario({ extra: 'pause_when_gpu_busy = true', timings: { presence_sample_ms: 50 } });
    const bin = join(config.dir, 'bin');
    const appsFile = join(config.dir, 'compute-apps');
    await writeFile(appsFile, '');
    await standIn(
      bin,
      'nvidia-smi',
      `case "$1" in\n  --query-gpu=*) echo 'NVIDIA GeForce RTX 4090, 24564' ;;\n  --query-compute-apps=*) cat '${appsFile}' ;;\n  *) exit 9 ;;\nesac`,
    );
    const daemon = start({ env: { PATH: `${bin}:${process.env.PATH}` } });
    const connection = await studio.ready(0);
    const api = await Api.of(daemon);
    const status = (await api.get('/daemon/status')).json;
    assert.deepEqual(status.gpus, [{ vendor: 'nvidia', name: 'NVIDIA GeForce RTX 4090', vramGb: 24, source: 'nvidia-smi' }]);
    assert.equal(status.vramTotalGb, 24);

    connection.send(offerFrame({ jobId: 'gpu-free', delayMs: 300 }));
    await connection.jobFrame('accept', 'gpu-free');
    await writeFile(appsFile, '4242, /usr/games/bin/ShooterGame\n');
    await connection.frame((f) => f.type === 'heartbeat' && f.capabilities.autoEnabled === false, 'a paused heartbeat while the game runs', { after: connection.frames.length });
    await connection.jobFrame('completeJson', 'gpu-free');
    connection.send(offerFrame({ jobId: 'gpu-busy' }));
    const reject = await connection.jobFrame('reject', 'gpu-busy');
    assert.equal(reject.code, 'paused');
    assert.match(reject.reason, /another program uses the GPU \(ShooterGame pid 4242; pause_when_gpu_busy\)/);
    assert.deepEqual((await api.get('/daemon/status')).json.gpuBusy, [{ pid: 4242, name: '/usr/games/bin/ShooterGame' }]);

    await writeFile(appsFile, '');
    await connection.frame((f) => f.type === 'heartbeat' && f.capabilities.autoEnabled === true, 'a resumed heartbeat', { after: connection.frames.length });
    connection.send(offerFrame({ jobId: 'after-game' }));
    await connection.jobFrame('completeJson', 'after-game');
    assert.equal((await daemon.stop()).code, 0);
  });
});
