import type { SqlPort } from './ports.ts';

/** Every statement about the `meta` table: small named values of the studio (the admin token's hash, one-time marks). */
export class MetaStore {
  private readonly sql: SqlPort;
  constructor(sql: SqlPort) {
    this.sql = sql;
  }

  get(key: string): string | undefined {
    return this.sql.get<{ value: string }>('SELECT value FROM meta WHERE key = ?', key)?.value;
  }

  set(key: string, value: string): void {
    this.sql.run('INSERT INTO meta (key, value) VALUES (?, ?) ON CONFLICT (key) DO UPDATE SET value = excluded.value', key, value);
  }
}
