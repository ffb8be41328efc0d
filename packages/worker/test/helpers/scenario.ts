import { readdir } from 'node:fs/promises';
import { join } from 'node:path';
import { afterEach } from 'node:test';
import { DaemonProcess, makeConfig, type TestConfig } from './daemon-process.ts';
import { FakeStudio } from './fake-studio.ts';
import { pollUntil } from './wait.ts';

export interface Scenario {
  studio: FakeStudio;
  config: TestConfig;
  /** The real daemon; `script` runs another entry point instead (see scripted-daemon.ts). */
  start(options?: { script?: string; env?: Record<string, string> }): DaemonProcess;
}

/**
 * Per-test fixtures: a fake studio, a config dir pointing at it, and daemons that are killed and
 * cleaned up after the test whatever happened. Call once at the top of a describe().
 */
export function useScenarios(): (options?: { approved?: boolean; extra?: string; timings?: Record<string, number> }) => Promise<Scenario> {
  const cleanups: Array<() => Promise<void> | void> = [];
  afterEach(async () => {
    for (const cleanup of cleanups.splice(0).reverse()) await cleanup();
  });
  return async (options = {}) => {
    const studio = await FakeStudio.start();
    cleanups.push(() => studio.close());
    const config = await makeConfig(studio.url, options);
    cleanups.push(() => config.cleanup());
    return {
      studio,
      config,
      start(startOptions = {}) {
        const daemon = new DaemonProcess(config.configPath, [], startOptions);
        cleanups.push(() => {
          if (!daemon.exitInfo) daemon.child.kill('SIGKILL');
        });
        return daemon;
      },
    };
  };
}

/** The outbox's entry files (metadata only). */
export async function outboxFiles(dir: string): Promise<string[]> {
  try {
    return (await readdir(join(dir, 'outbox'))).filter((name) => name.endsWith('.json')).sort();
  } catch {
    return [];
  }
}

export function outboxEmpty(dir: string, what = 'the outbox to be empty'): Promise<true> {
  return pollUntil(async () => ((await readdir(join(dir, 'outbox'))).length === 0 ? true : undefined), what);
}
