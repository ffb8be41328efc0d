// Where a stopped studio's ground truth lies on disk, for oracles that read it directly (the chaos
// run): the database and the stored result files, for either host.
// - Node (`studio serve`): `<dataDir>/studio.sqlite` and `<dataDir>/results/<file>`.
// - Cloudflare (`studio:cf`, Miniflare 4 persistence): each pool's object database is
//   `<dataDir>/durable-objects/studio-StudioObject/<64-hex object id>.sqlite` (beside Miniflare's
//   own `metadata.sqlite`), and results are R2 objects under `<dataDir>/r2`, read here through a
//   Miniflare instance over the same persistence (workerd's own R2, not a copy of its format).
import { existsSync, readdirSync, readFileSync } from 'node:fs';
import { join } from 'node:path';
import { Miniflare } from 'miniflare';

const DO_DIR = ['durable-objects', 'studio-StudioObject'];

/** The studio's database file; with several pools on the Cloudflare host, pass the one you mean to have only one. */
export function studioDatabaseFile(dataDir: string): string {
  const node = join(dataDir, 'studio.sqlite');
  if (existsSync(node)) return node;
  const dir = join(dataDir, ...DO_DIR);
  const objects = existsSync(dir) ? readdirSync(dir).filter((name) => /^[0-9a-f]{64}\.sqlite$/.test(name)) : [];
  if (objects.length !== 1) throw new Error(`expected one studio database in ${dataDir} (studio.sqlite, or one Durable Object's), found ${objects.length}`);
  return join(dir, objects[0] as string);
}

/** Reads stored results by the key a job row records (`result_file`); call `close` when done. */
export async function openStoredResults(dataDir: string): Promise<{ read(key: string): Promise<Uint8Array | undefined>; close(): Promise<void> }> {
  if (existsSync(join(dataDir, 'studio.sqlite'))) {
    return {
      async read(key) {
        const path = join(dataDir, 'results', key);
        return existsSync(path) ? new Uint8Array(readFileSync(path)) : undefined;
      },
      async close() {},
    };
  }
  process.env.WRANGLER_SEND_METRICS = 'false';
  const mf = new Miniflare({ modules: true, script: 'export default { fetch() { return new Response(null); } }', compatibilityDate: '2026-07-01', r2Buckets: ['RESULTS'], r2Persist: join(dataDir, 'r2') });
  const bucket = (await mf.getR2Bucket('RESULTS')) as unknown as { get(key: string): Promise<{ arrayBuffer(): Promise<ArrayBuffer> } | null> };
  return {
    async read(key) {
      const object = await bucket.get(key);
      return object ? new Uint8Array(await object.arrayBuffer()) : undefined;
    },
    close: () => mf.dispose(),
  };
}
