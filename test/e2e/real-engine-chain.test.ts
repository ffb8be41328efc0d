// The real-engine chain end to end: a registry entry whose ModelSource names sd-cpp and a weights
// file; the worker downloads and verifies the file (sha256), runs sd-cli (a faithful fake of it) with
// that file, and uploads the image. A worker without sd-cpp never gets the job; a corrupt download
// fails the job with a clear reason instead of running on bad weights. On both studio hosts
// (test/helpers/hosts.ts).
import assert from 'node:assert/strict';
import { createHash, randomBytes } from 'node:crypto';
import { existsSync, mkdtempSync, readFileSync, rmSync } from 'node:fs';
import { createServer, type Server } from 'node:http';
import type { AddressInfo } from 'node:net';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { after, before, describe, it } from 'node:test';
import sharp from 'sharp';
import { defaultConfig } from 'studio-worker';
import { forEachHost } from '../helpers/hosts.ts';
import { ROOT, startStudioProcess, startWorkerProcess, writeWorkerConfig, type Proc, type StudioProc } from '../helpers/processes.ts';
import { waitFor } from '../helpers/wait.ts';

const FAKE_SD_CLI = join(ROOT, 'packages', 'worker', 'test', 'engines', 'fakes', 'sd-cli.mjs');
const weights = randomBytes(3 * 1024 * 1024);
const sha256 = createHash('sha256').update(weights).digest('hex');

forEachHost((host) => {
  let dir: string;
  let studio: StudioProc;
  let files: Server;
  let filesUrl: string;
  let requests = 0;
  const workers: Proc[] = [];
  let sdWorkerId: string;
  let modelsRoot: string;

  before(async () => {
    dir = mkdtempSync(join(tmpdir(), 'e2e-chain-'));
    files = createServer((req, res) => {
      requests++;
      if (req.url !== '/z_image.gguf') return void res.writeHead(404).end();
      res.writeHead(200, { 'content-length': weights.length, 'content-type': 'application/octet-stream' });
      res.end(weights);
    });
    await new Promise<void>((resolve) => files.listen(0, '127.0.0.1', resolve));
    filesUrl = `http://127.0.0.1:${(files.address() as AddressInfo).port}`;
    // The weights come from a plain-http loopback server: a development setup on both sides.
    studio = await startStudioProcess({ dataDir: join(dir, 'studio'), host, args: ['--allow-loopback-http-models'] });

    const sd = await studio.api.createWorker('sd box');
    sdWorkerId = sd.workerId;
    const sdConfig = join(dir, 'sd', 'config.toml');
    modelsRoot = join(dir, 'sd', 'models');
    await writeWorkerConfig(sdConfig, {
      apiBaseUrl: `${studio.url}/`,
      ...sd,
      modelsRoot,
      // The weights come from a plain-http loopback server: allowed explicitly (https only otherwise).
      allowLoopbackHttp: true,
      engines: { ...defaultConfig().engines, synthetic: { enabled: false }, 'sd-cpp': { sdCli: [process.execPath, FAKE_SD_CLI], vulkanCheck: false } },
    });
    workers.push(startWorkerProcess(sdConfig, { name: 'sd' }));
    const plain = await studio.api.createWorker('synthetic only');
    const plainConfig = join(dir, 'plain', 'config.toml');
    await writeWorkerConfig(plainConfig, { apiBaseUrl: `${studio.url}/`, ...plain });
    workers.push(startWorkerProcess(plainConfig, { name: 'plain' }));
    await waitFor('both workers online', async () => (await studio.api.workers()).filter((w) => w.state === 'online').length === 2);
  });

  after(async () => {
    await Promise.all(workers.map((w) => w.stop()));
    await studio?.stop();
    await new Promise<void>((resolve) => files.close(() => resolve()));
    rmSync(dir, { recursive: true, force: true });
  });

  describe('real engine chain: registry → provisioning → sd-cpp → result', () => {
    it('downloads and verifies the weights once, runs sd-cli with them, and stores the image', async () => {
      const sdWorker = (await studio.api.workers()).find((w) => w.id === sdWorkerId);
      assert.deepEqual(sdWorker?.capabilities?.supportedModelsPerKind.image, ['sd-cpp:*'], 'the sd worker advertises sd-cpp (its binary was found) and no model yet');
      await studio.api.json('POST', '/models', {
        id: 'z-image-turbo-test',
        kind: 'image',
        vramGbEstimate: 4,
        source: {
          engine: 'sd-cpp',
          files: [{ role: 'diffusion-model', url: `${filesUrl}/z_image.gguf`, filename: 'z_image.gguf', sha256, approxBytes: weights.length }],
          cliDefaults: { steps: 4, cfgScale: 1, samplingMethod: 'euler' },
        },
      });
      const jobs = await studio.api.createJobs([
        { model: 'z-image-turbo-test', task: { kind: 'image', prompt: 'an aurora fox', width: 96, height: 64, ext: 'png' } },
        { model: 'z-image-turbo-test', task: { kind: 'image', prompt: 'a second fox', width: 64, height: 64, ext: 'png' } },
      ]);
      for (const job of jobs) {
        const done = await waitFor(`job ${job.id} to end`, async () => {
          const view = await studio.api.job(job.id);
          return view.status === 'done' || view.status === 'failed' ? view : undefined;
        }, { timeoutMs: 30_000 });
        assert.equal(done.status, 'done', done.lastError);
        assert.equal(done.lastWorkerId, sdWorkerId, 'only the worker with sd-cpp ran it');
        const image = await studio.api.result(job.id);
        const meta = await sharp(image.bytes).metadata();
        assert.equal(meta.format, 'png');
        assert.equal(meta.width, job.task.kind === 'image' ? job.task.width : 0);
      }
      const stored = join(modelsRoot, 'z-image-turbo-test', 'z_image.gguf');
      assert.ok(existsSync(stored));
      assert.equal(createHash('sha256').update(readFileSync(stored)).digest('hex'), sha256);
      assert.equal(requests, 1, 'downloaded once, reused for the second job');
      // The worker now advertises the model as ready (its files are verified).
      await waitFor('the sd worker to advertise the verified model', async () =>
        (await studio.api.workers()).find((w) => w.id === sdWorkerId)?.capabilities?.supportedModelsPerKind.image?.includes('z-image-turbo-test'),
      );
    });

    it('a download that does not match its sha256 fails the job with the reason, and is not kept', async () => {
      await studio.api.json('POST', '/models', {
        id: 'corrupt-weights',
        kind: 'image',
        source: { engine: 'sd-cpp', files: [{ role: 'diffusion-model', url: `${filesUrl}/z_image.gguf`, filename: 'z_image.gguf', sha256: 'ab'.repeat(32) }] },
      });
      const [job] = await studio.api.createJobs([{ model: 'corrupt-weights', task: { kind: 'image', prompt: 'never drawn' } }]);
      assert.ok(job);
      const failed = await waitFor('the job to fail', async () => {
        const view = await studio.api.job(job.id);
        return view.status === 'failed' ? view : undefined;
      }, { timeoutMs: 30_000 });
      assert.match(failed.lastError ?? '', /sha256/i);
      assert.equal(failed.result, undefined);
      assert.ok(!existsSync(join(modelsRoot, 'corrupt-weights', 'z_image.gguf')));
    });
  });
});
