import assert from 'node:assert/strict';
import { registerHooks } from 'node:module';
import { describe, it } from 'node:test';
import { silentLogger } from '@studio-worker/log';

// Every module this process resolves from here on (its own process: node --test runs files apart).
const resolved: string[] = [];
registerHooks({
  resolve(specifier, context, nextResolve) {
    const result = nextResolve(specifier, context);
    resolved.push(result.url);
    return result;
  },
});

const SERVER_ENGINES = ['comfyui', 'a1111', 'openai', 'onnx', 'llama-cpp'];
const engineModules = (name: string) => resolved.filter((url) => url.includes(`/src/engines/${name}/`));

describe('engine roster, lazily', () => {
  it('imports only the engines config.toml switches on: the defaults load none of the server-backed five', async () => {
    const { parseConfigText } = await import('../../src/config/file.ts');
    const { buildEngines } = await import('../../src/engines/roster.ts');
    const deps = { log: silentLogger, modelsRoot: '/tmp/models-roster-lazy-test', userAgent: 'studio-worker/test', env: {} };
    const defaults = await buildEngines(parseConfigText('').engines, deps);
    assert.deepEqual(defaults.map((e) => e.name), ['synthetic', 'sd-cpp']);
    assert.ok(engineModules('synthetic').length > 0 && engineModules('sd-cpp').length > 0, 'the hook sees engine modules');
    for (const name of SERVER_ENGINES) assert.deepEqual(engineModules(name), [], `${name} was not imported`);
    // Switched on, an engine's code comes in then.
    const withComfy = await buildEngines(parseConfigText('[engines.comfyui]\nurl = "http://127.0.0.1:8188"\n').engines, deps);
    assert.ok(withComfy.some((e) => e.name === 'comfyui'));
    assert.ok(engineModules('comfyui').length > 0);
    assert.deepEqual(engineModules('onnx'), []);
  });
});
