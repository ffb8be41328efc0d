/**
 * The real daemon (`studio-worker run`) with one more engine, `scripted`, for tests that need jobs
 * to fail on demand: an llm job whose prompt contains FAIL throws an engine failure; any other
 * succeeds at once. Run as `node scripted-daemon.ts <config.toml>` (DaemonProcess's `script`).
 */
import { fileURLToPath } from 'node:url';
import { configuredEngines, runDaemon } from '../../src/daemon/daemon.ts';
import { EngineFailure, type Engine } from '../../src/engines/engine.ts';

export const SCRIPTED_DAEMON = fileURLToPath(import.meta.url);
export const FAIL_MARKER = 'FAIL';

const scripted: Engine = {
  name: 'scripted',
  kinds: ['llm'],
  probe: async () => ({ available: true, detail: 'test engine' }),
  advertisedModels: () => ({}),
  async run(job) {
    const prompt = job.task.kind === 'llm' ? job.task.messages.map((message) => message.content).join('\n') : '';
    if (prompt.includes(FAIL_MARKER)) throw new EngineFailure('engine_error', `scripted failure for ${job.jobId}`, { retryable: true });
    return { type: 'json', json: { ok: true, jobId: job.jobId } };
  },
};

if (process.argv[1] === SCRIPTED_DAEMON) {
  const configPath = process.argv[2];
  if (!configPath) throw new Error('usage: scripted-daemon.ts <config.toml>');
  const code = await runDaemon({ configPath, engines: async (config) => [...(await configuredEngines(config)), scripted] });
  process.exitCode = code;
  setTimeout(() => process.exit(code), 1_000).unref();
}
