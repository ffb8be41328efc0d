import assert from 'node:assert/strict';
import { describe, it } from 'node:test';
import { silentLogger } from '@studio-worker/log';
import { ConfigError } from '../../src/config/errors.ts';
import { parseConfigText, renderConfigToml } from '../../src/config/file.ts';
import { buildEngines } from '../../src/engines/roster.ts';

const deps = { log: silentLogger, modelsRoot: '/tmp/models-roster-test', userAgent: 'studio-worker/test', env: {} };
const names = async (toml: string) => (await buildEngines(parseConfigText(toml).engines, deps)).map((e) => e.name);

describe('engine roster', () => {
  it('runs synthetic and sd-cpp without any engine tables (sd-cpp then says how to install it)', async () => {
    assert.deepEqual(await names(''), ['synthetic', 'sd-cpp']);
  });

  it('switches server-backed engines on with their table, and any engine off with enabled = false', async () => {
    const toml = `
[engines.synthetic]
enabled = false
[engines.sd-cpp]
enabled = false
[engines.comfyui]
url = "http://127.0.0.1:8188"
[engines.a1111]
[engines.openai]
base_url = "http://127.0.0.1:9/v1"
[engines.onnx]
[engines.llama-cpp]
server_url = "http://127.0.0.1:9/v1"
`;
    assert.deepEqual(await names(toml), ['comfyui', 'a1111', 'openai', 'onnx', 'llama-cpp']);
  });

  it('refuses a bad engine table with an error naming the table and the key as written in the file', async () => {
    const config = parseConfigText('[engines.comfyui]\nstep_timeout_secs = "soon"\n');
    await assert.rejects(
      buildEngines(config.engines, deps),
      (error: unknown) => error instanceof ConfigError && /\[engines\.comfyui\] step_timeout_secs:/.test(error.message),
    );
  });

  it('masks engine credentials in `studio-worker config` output and keeps env names as written', () => {
    const config = parseConfigText(`
[engines.openai]
base_url = "http://127.0.0.1:9/v1"
api_key = "sk-SECRET-123"
[engines.a1111]
username = "ada"
password = "hunter2-SECRET"
[engines.sd-cpp.env]
GGML_VK_VISIBLE_DEVICES = "0"
my_lower_var = "x"
`);
    const masked = renderConfigToml(config, { maskSecrets: true });
    assert.ok(!masked.includes('SECRET'), masked);
    assert.match(masked, /api_key = "…\(set\)"/);
    assert.match(masked, /username = "ada"/);
    const plain = renderConfigToml(config);
    assert.match(plain, /GGML_VK_VISIBLE_DEVICES = "0"/);
    assert.match(plain, /my_lower_var = "x"/, 'env keys are not camel-cased or snake-cased');
    const env = (parseConfigText(plain).engines as Record<string, { env?: object }>)['sd-cpp']?.env;
    assert.deepEqual({ ...env }, { GGML_VK_VISIBLE_DEVICES: '0', my_lower_var: 'x' });
  });
});
