import type { TokenScope } from '@studio-worker/protocol';
import type { SqlPort } from './ports.ts';

export interface TokenRow {
  id: string;
  name: string;
  scope: TokenScope;
  token_hash: string;
  created_at: number;
  last_used_at: number | null;
  revoked_at: number | null;
}

/** Every statement about the `api_tokens` table (tokens are stored as their SHA-256 only). */
export class ApiTokenStore {
  private readonly sql: SqlPort;
  constructor(sql: SqlPort) {
    this.sql = sql;
  }

  insert(id: string, name: string, scope: TokenScope, tokenHash: string, now: number): void {
    this.sql.run('INSERT INTO api_tokens (id, name, scope, token_hash, created_at) VALUES (?, ?, ?, ?, ?)', id, name, scope, tokenHash, now);
  }

  /** Newest first. */
  list(): TokenRow[] {
    return this.sql.all<TokenRow>('SELECT * FROM api_tokens ORDER BY created_at DESC');
  }

  /** Revoke (a second revoke keeps the first time); answers the row, or undefined for an unknown id. */
  revoke(id: string, now: number): TokenRow | undefined {
    return this.sql.get<TokenRow>('UPDATE api_tokens SET revoked_at = COALESCE(revoked_at, ?) WHERE id = ? RETURNING *', now, id);
  }

  /** The live (not revoked) token with this hash. */
  liveByHash(tokenHash: string): TokenRow | undefined {
    return this.sql.get<TokenRow>('SELECT * FROM api_tokens WHERE token_hash = ? AND revoked_at IS NULL', tokenHash);
  }

  touch(id: string, now: number): void {
    this.sql.run('UPDATE api_tokens SET last_used_at = ? WHERE id = ?', now, id);
  }
}
