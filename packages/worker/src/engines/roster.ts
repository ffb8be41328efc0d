import { z } from 'zod';
import type { Logger } from '@studio-worker/log';
import { ConfigError } from '../config/errors.ts';
import { camelToSnake, type WorkerConfig } from '../config/schema.ts';
import type { Engine } from './engine.ts';

export interface RosterDeps {
  log: Logger;
  modelsRoot: string;
  userAgent: string;
  env?: NodeJS.ProcessEnv;
}

type Factory = (table: Record<string, unknown>, deps: RosterDeps) => Promise<Engine>;

/**
 * Every engine this worker knows, by the `ModelSource.engine` name it serves, and whether it is on
 * without a `[engines.<name>]` table. sd-cpp is always on, as in the original: without its binary it
 * is simply unavailable, and `studio-worker status` says how to install it. The server-backed
 * engines come on once their table exists, so a worker does not probe servers its owner never
 * mentioned. Each engine's code is imported only when it is switched on: an idle daemon with the
 * defaults never loads the five server-backed engines (bench:idle, issue 15).
 */
const ENGINES: ReadonlyArray<{ name: string; onByDefault: boolean; create: Factory }> = [
  { name: 'synthetic', onByDefault: true, create: async () => (await import('./synthetic/index.ts')).createSyntheticEngine() },
  { name: 'sd-cpp', onByDefault: true, create: async (t, d) => (await import('./sd-cpp/index.ts')).createSdCppEngine(t, { log: d.log, modelsRoot: d.modelsRoot, userAgent: d.userAgent, env: d.env }) },
  { name: 'comfyui', onByDefault: false, create: async (t, d) => (await import('./comfyui/index.ts')).createComfyuiEngine(t, { log: d.log, modelsRoot: d.modelsRoot }) },
  { name: 'a1111', onByDefault: false, create: async (t, d) => (await import('./a1111/index.ts')).createA1111Engine(t, { log: d.log, modelsRoot: d.modelsRoot }) },
  { name: 'openai', onByDefault: false, create: async (t, d) => (await import('./openai/index.ts')).createOpenAIEngine(t, { log: d.log, modelsRoot: d.modelsRoot, env: d.env }) },
  { name: 'onnx', onByDefault: false, create: async (t, d) => (await import('./onnx/index.ts')).createOnnxEngine(t, { log: d.log, modelsRoot: d.modelsRoot }) },
  { name: 'llama-cpp', onByDefault: false, create: async (t, d) => (await import('./llama-cpp/index.ts')).createLlamaCppEngine(t, { log: d.log, modelsRoot: d.modelsRoot, env: d.env }) },
];

export const KNOWN_ENGINE_TABLES: readonly string[] = ENGINES.map((e) => e.name);

/**
 * Build the engines `config.toml` switches on. A table with `enabled = false` switches its engine
 * off. A table an engine rejects stops the daemon with an error naming the table and the key.
 */
export async function buildEngines(tables: WorkerConfig['engines'], deps: RosterDeps): Promise<Engine[]> {
  const engines: Engine[] = [];
  const all = tables as Record<string, unknown>;
  for (const unknown of Object.keys(all).filter((name) => !KNOWN_ENGINE_TABLES.includes(name))) {
    deps.log.warn({ op: 'engines', table: unknown }, `config.toml: [engines.${unknown}] is not an engine this worker knows (known: ${KNOWN_ENGINE_TABLES.join(', ')}); ignored`);
  }
  for (const { name, onByDefault, create } of ENGINES) {
    const table = all[name] as Record<string, unknown> | undefined;
    if (table === undefined ? !onByDefault : table.enabled === false) continue;
    // `enabled` is the roster's switch; the engines' own schemas do not know it.
    const { enabled: _enabled, ...settings } = table ?? {};
    try {
      engines.push(await create(settings, { ...deps, log: deps.log.child({ engine: name }) }));
    } catch (error) {
      if (error instanceof z.ZodError) {
        const problems = error.issues.map((i) => `${i.path.length ? i.path.map((p) => camelToSnake(String(p))).join('.') : '(table)'}: ${i.message}`).join('; ');
        throw new ConfigError('config_invalid', `config.toml [engines.${name}] ${problems}`);
      }
      throw error;
    }
  }
  return engines;
}
