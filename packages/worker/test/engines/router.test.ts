import { test } from 'node:test';
import assert from 'node:assert/strict';
import { Writable } from 'node:stream';
import { pino } from 'pino';
import { silentLogger } from '@studio-worker/log';
import { enginesByKind, WorkerCapabilities, type TaskKind } from '@studio-worker/protocol';
import type { Engine, EngineAvailability } from '../../src/engines/engine.ts';
import { EngineRouter } from '../../src/engines/router.ts';
import { createSyntheticEngine } from '../../src/engines/synthetic/index.ts';

interface FakeOptions {
  probe?: () => Promise<EngineAvailability>;
  models?: Partial<Record<TaskKind, readonly string[]>>;
  close?: () => Promise<void>;
}

/** A minimal Engine: the router only probes, reads kinds/models and closes; run() must never be reached. */
function fake(name: string, kinds: TaskKind[], options: FakeOptions = {}): Engine & { closed: number } {
  const engine = {
    name,
    kinds,
    closed: 0,
    probe: options.probe ?? (async () => ({ available: true }) as EngineAvailability),
    advertisedModels: () => options.models ?? {},
    run: async () => {
      throw new Error(`fake ${name} engine was asked to run a job`);
    },
    close: async () => {
      engine.closed++;
      await options.close?.();
    },
  };
  return engine;
}

const down = (reason: string) => async (): Promise<EngineAvailability> => ({ available: false, reason });

async function routerWith(engines: Engine[], options?: { probeTimeoutMs?: number }) {
  const router = new EngineRouter(engines, silentLogger, options);
  await router.refresh();
  return router;
}

test('strict routing: an sd-cpp image job on a synthetic-only worker is refused, never run on synthetic', async () => {
  const router = await routerWith([createSyntheticEngine()]);
  const decision = router.resolve('sd-cpp', 'image');
  assert.equal(decision.ok, false);
  assert.ok(!decision.ok);
  assert.equal(decision.code, 'unsupported');
  assert.match(decision.reason, /no "sd-cpp" engine on this worker/);
  assert.match(decision.reason, /config\.toml/, 'says what to configure');
  // The same worker does serve synthetic image jobs.
  const synthetic = router.resolve('synthetic', 'image');
  assert.ok(synthetic.ok);
  assert.equal(synthetic.engine.name, 'synthetic');
});

test('strict routing: unknown engine, wrong kind and unavailable engine each say what is missing', async () => {
  const router = await routerWith([
    createSyntheticEngine(),
    fake('sd-cpp', ['image']),
    fake('comfyui', ['image', 'video'], { probe: down('comfyui_url is not set in config.toml') }),
  ]);

  const unknown = router.resolve('mystery-engine', 'image');
  assert.ok(!unknown.ok);
  assert.equal(unknown.code, 'unsupported');
  assert.match(unknown.reason, /no "mystery-engine" engine/);

  const wrongKind = router.resolve('sd-cpp', 'llm');
  assert.ok(!wrongKind.ok);
  assert.match(wrongKind.reason, /"sd-cpp" engine cannot serve llm tasks \(it serves image\)/);

  const unavailable = router.resolve('comfyui', 'image');
  assert.ok(!unavailable.ok);
  assert.match(unavailable.reason, /"comfyui" engine is unavailable on this worker: comfyui_url is not set in config\.toml/);

  // Another engine of the same kind being available never helps.
  const sd = router.resolve('sd-cpp', 'image');
  assert.ok(sd.ok);
  assert.equal(sd.engine.name, 'sd-cpp');
});

test('before the first refresh every engine counts as unavailable', () => {
  const router = new EngineRouter([createSyntheticEngine()], silentLogger);
  const decision = router.resolve('synthetic', 'image');
  assert.ok(!decision.ok);
  assert.match(decision.reason, /not probed yet/);
  assert.deepEqual(router.capabilities(), {
    supportedModels: [],
    taskKinds: [],
    supportedModelsPerKind: {},
    unavailableEngines: [{ engine: 'synthetic', reason: 'not probed yet' }],
  });
});

test('capabilities: wildcards for real engines, advertised ids for synthetic, sorted and deduped; unavailable listed apart', async () => {
  const router = await routerWith([
    fake('llama-cpp', ['llm'], { models: { llm: ['qwen3-8b.gguf', 'llama-cpp:*'], image: ['not-served-kind'] } }),
    fake('comfyui', ['video', 'image']),
    fake('a1111', ['image'], { probe: down('no answer from http://127.0.0.1:7860') }),
    fake('openai', ['llm'], {
      probe: async () => {
        throw new Error('ECONNREFUSED 127.0.0.1:8080');
      },
    }),
    createSyntheticEngine(),
  ]);
  const caps = router.capabilities();
  assert.deepEqual(caps, {
    supportedModels: [
      'comfyui:*',
      'llama-cpp:*',
      'qwen3-8b.gguf',
      'synthetic',
      'synthetic-image',
      'synthetic-llm',
      'synthetic-stt',
      'synthetic-tts',
      'synthetic-video',
    ],
    taskKinds: ['image', 'llm', 'audio_stt', 'audio_tts', 'video'],
    supportedModelsPerKind: {
      image: ['comfyui:*', 'synthetic', 'synthetic-image'],
      llm: ['llama-cpp:*', 'qwen3-8b.gguf', 'synthetic', 'synthetic-llm'],
      audio_stt: ['synthetic', 'synthetic-stt'],
      audio_tts: ['synthetic', 'synthetic-tts'],
      video: ['comfyui:*', 'synthetic', 'synthetic-video'],
    },
    unavailableEngines: [
      { engine: 'a1111', reason: 'no answer from http://127.0.0.1:7860' },
      { engine: 'openai', reason: 'probe failed: ECONNREFUSED 127.0.0.1:8080' },
    ],
  });
  // The shape the wire contract expects.
  WorkerCapabilities.pick({ supportedModels: true, taskKinds: true, supportedModelsPerKind: true, unavailableEngines: true }).parse(caps);
  assert.ok(!Object.values(caps.supportedModelsPerKind).flat().includes('synthetic:*'));
});

test('capabilities: taskKinds follow TASK_KINDS order and unavailableEngines is omitted when every engine runs', async () => {
  const router = await routerWith([fake('onnx', ['video', 'audio_tts', 'image']), fake('parakeet', ['audio_stt'])]);
  const caps = router.capabilities();
  assert.deepEqual(caps.taskKinds, ['image', 'audio_stt', 'audio_tts', 'video']);
  assert.equal('unavailableEngines' in caps, false);
  assert.deepEqual(caps.supportedModelsPerKind, {
    image: ['onnx:*'],
    audio_stt: ['parakeet:*'],
    audio_tts: ['onnx:*'],
    video: ['onnx:*'],
  });
});

test('capabilities round-trip through enginesByKind: available pairs present, unavailable absent', async () => {
  const engines = [
    createSyntheticEngine(),
    fake('sd-cpp', ['image']),
    fake('llama-cpp', ['llm']),
    fake('comfyui', ['image', 'video'], { probe: down('not configured') }),
    fake('openai', ['llm'], {
      probe: async () => {
        throw new Error('boom');
      },
    }),
  ];
  const router = await routerWith(engines);
  const served = enginesByKind(router.capabilities());
  for (const status of router.status()) {
    for (const kind of status.kinds) {
      assert.equal(served.get(kind)?.has(status.engine) ?? false, status.available, `${status.engine} / ${kind}`);
      assert.equal(router.resolve(status.engine, kind).ok, status.available, `resolve ${status.engine} / ${kind}`);
    }
  }
  assert.deepEqual([...(served.get('image') ?? [])].sort(), ['sd-cpp', 'synthetic']);
  assert.deepEqual([...(served.get('video') ?? [])], ['synthetic']);
});

test('status: every engine with its kinds, availability and the probe’s reason or detail', async () => {
  const router = await routerWith([
    fake('sd-cpp', ['image'], { probe: async () => ({ available: true, detail: 'sd-cli 1.2 at /opt/bin/sd-cli' }) }),
    fake('comfyui', ['image'], { probe: down('comfyui_url is not set') }),
    fake('openai', ['llm'], {
      probe: async () => {
        throw 'not an error object';
      },
    }),
  ]);
  assert.deepEqual(router.status(), [
    { engine: 'sd-cpp', kinds: ['image'], available: true, detail: 'sd-cli 1.2 at /opt/bin/sd-cli' },
    { engine: 'comfyui', kinds: ['image'], available: false, reason: 'comfyui_url is not set' },
    { engine: 'openai', kinds: ['llm'], available: false, reason: 'probe failed: not an error object' },
  ]);
});

test('a probe that never answers counts as unavailable after the probe timeout', async () => {
  const router = await routerWith([fake('comfyui', ['image'], { probe: () => new Promise<EngineAvailability>(() => {}) }), fake('sd-cpp', ['image'])], {
    probeTimeoutMs: 20,
  });
  const [comfy, sd] = router.status();
  assert.equal(comfy?.available, false);
  assert.match(comfy?.reason ?? '', /did not answer within 20 ms/);
  assert.equal(sd?.available, true);
});

test('refresh picks up availability changes and logs only the changes', async () => {
  let up = false;
  const lines: Array<{ op?: string; engine?: string; available?: boolean; msg?: string }> = [];
  const sink = new Writable({
    write(chunk: Buffer, _encoding, done) {
      lines.push(JSON.parse(chunk.toString()));
      done();
    },
  });
  const log = pino({ level: 'info' }, sink);
  const engine = fake('sd-cpp', ['image'], { probe: async () => (up ? { available: true } : { available: false, reason: 'sd-cli not found' }) });
  const router = new EngineRouter([engine], log);

  await router.refresh();
  await router.refresh();
  assert.equal(router.resolve('sd-cpp', 'image').ok, false);
  up = true;
  await router.refresh();
  assert.equal(router.resolve('sd-cpp', 'image').ok, true);
  assert.deepEqual(router.capabilities().taskKinds, ['image']);
  await new Promise<void>((resolve) => sink.end(resolve));

  const probes = lines.filter((line) => line.op === 'engine_probe');
  assert.deepEqual(
    probes.map((line) => [line.engine, line.available]),
    [
      ['sd-cpp', false],
      ['sd-cpp', true],
    ],
  );
  // `logs` and the web UI show the message alone: it names the engine and the reason.
  assert.deepEqual(
    probes.map((line) => line.msg),
    ['engine sd-cpp unavailable: sd-cli not found', 'engine sd-cpp available'],
  );
});

test('concurrent refresh calls share one round of probes', async () => {
  let probes = 0;
  const router = new EngineRouter(
    [
      fake('sd-cpp', ['image'], {
        probe: async () => {
          probes++;
          return { available: true };
        },
      }),
    ],
    silentLogger,
  );
  await Promise.all([router.refresh(), router.refresh(), router.refresh()]);
  assert.equal(probes, 1);
  await router.refresh();
  assert.equal(probes, 2);
});

test('closeAll closes every engine and never throws, even when one close fails', async () => {
  const a = fake('sd-cpp', ['image']);
  const b = fake('comfyui', ['image'], {
    close: async () => {
      throw new Error('already gone');
    },
  });
  const c = fake('openai', ['llm']);
  const router = new EngineRouter([a, b, c, createSyntheticEngine()], silentLogger);
  await router.closeAll();
  assert.deepEqual([a.closed, b.closed, c.closed], [1, 1, 1]);
});

test('two engines with the same name are a setup error', () => {
  assert.throws(() => new EngineRouter([fake('sd-cpp', ['image']), fake('sd-cpp', ['video'])], silentLogger), /two engines are named "sd-cpp"/);
});

test('a synthetic engine that advertises nothing for a kind still shows up as "synthetic", never "synthetic:*"', async () => {
  const router = await routerWith([fake('synthetic', ['image', 'llm'], { models: { llm: ['synthetic-llm'] } })]);
  assert.deepEqual(router.capabilities().supportedModelsPerKind, { image: ['synthetic'], llm: ['synthetic-llm'] });
  assert.deepEqual([...(enginesByKind(router.capabilities()).get('image') ?? [])], ['synthetic']);
});

test('probed() settles only once the first round of probes has, so start-up requests wait instead of being refused', async () => {
  const probe = Promise.withResolvers<EngineAvailability>();
  const router = new EngineRouter([fake('slow', ['image'], { probe: () => probe.promise })], silentLogger);
  let settled = false;
  const waiting = router.probed().then(() => (settled = true));
  void router.refresh();
  assert.match((router.resolve('slow', 'image') as { reason: string }).reason, /not probed yet/);
  await new Promise((resolve) => setImmediate(resolve));
  assert.equal(settled, false, 'still waiting for the probe');
  probe.resolve({ available: true });
  await waiting;
  assert.equal(router.resolve('slow', 'image').ok, true);
});
