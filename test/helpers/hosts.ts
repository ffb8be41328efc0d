// The shared end-to-end suite runs against both studio hosts (issue 12 item 4): the embedded Node
// host (`studio serve`) and the Cloudflare host under workerd (scripts/studio-cf.ts, Miniflare 4).
// A file wraps its tests in `forEachHost`, which declares them once per host inside that host's
// own `describe`, so the same assertions run on both and a failure names its host.
//
//   STUDIO_TEST_HOSTS=node         run these hosts only (comma-separated list; default: both)
//   STUDIO_E2E_HOST=cloudflare     (when STUDIO_TEST_HOSTS is unset) that one host only — the knob
//                                  `npm run test:cf` sets, which also makes it startStudioProcess's
//                                  default host for suites that are not parameterized
import { readdirSync } from 'node:fs';
import { join } from 'node:path';
import { describe } from 'node:test';

export type StudioHost = 'node' | 'cloudflare';
export const STUDIO_HOSTS: readonly StudioHost[] = ['node', 'cloudflare'];

/** The hosts this run covers: STUDIO_TEST_HOSTS, else STUDIO_E2E_HOST, else every host. An unknown name is an error, not a silent skip. */
export function testHosts(env: NodeJS.ProcessEnv = process.env): StudioHost[] {
  const wanted = (env.STUDIO_TEST_HOSTS ?? env.STUDIO_E2E_HOST)?.split(',').map((h) => h.trim()).filter(Boolean);
  if (!wanted || wanted.length === 0) return [...STUDIO_HOSTS];
  const unknown = wanted.filter((h) => !(STUDIO_HOSTS as readonly string[]).includes(h));
  if (unknown.length > 0) throw new Error(`STUDIO_TEST_HOSTS / STUDIO_E2E_HOST: unknown host ${unknown.join(', ')} (known: ${STUDIO_HOSTS.join(', ')})`);
  return STUDIO_HOSTS.filter((h) => wanted.includes(h));
}

/** Declare `fn`'s tests (and its before/after hooks) once per host, each inside `describe('<host> host')`. */
export function forEachHost(fn: (host: StudioHost) => void): void {
  for (const host of testHosts()) describe(`${host} host`, () => fn(host));
}

/**
 * Every file of the studio's SQLite databases, -wal and -shm included (what a test greps for
 * secrets): Node keeps `studio.sqlite` in the data dir; under Miniflare each pool's Durable Object
 * keeps `durable-objects/studio-StudioObject/<object id>.sqlite` (metadata.sqlite is Miniflare's
 * own). The one database file an oracle opens: stored-state.ts `studioDatabaseFile`.
 */
export function studioDatabaseFiles(host: StudioHost, dataDir: string): string[] {
  if (host === 'node') return readdirSync(dataDir).filter((f) => f.startsWith('studio.sqlite')).map((f) => join(dataDir, f));
  const dir = join(dataDir, 'durable-objects', 'studio-StudioObject');
  return readdirSync(dir).filter((f) => /^[0-9a-f]{64}\.sqlite/.test(f)).map((f) => join(dir, f));
}
