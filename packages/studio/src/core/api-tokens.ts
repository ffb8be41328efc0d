import type { CreatedToken, TokenScope, TokenView } from '@studio-worker/protocol';
import type { Ports } from './ports.ts';
import { fail, iso, isoOrUndefined, ok, type Result } from './result.ts';

interface TokenRow {
  id: string;
  name: string;
  scope: TokenScope;
  token_hash: string;
  created_at: number;
  last_used_at: number | null;
  revoked_at: number | null;
}

/** How often last-used is written back: once a minute per token, not once per request. */
const LAST_USED_RESOLUTION_MS = 60_000;

/**
 * API tokens with a scope, for scripts and integrations. The raw token (`sst_…`) is shown once at
 * creation; only its SHA-256 is stored. The bootstrap admin token (AdminAuth) stays separate.
 */
export class ApiTokens {
  private readonly ports: Ports;
  constructor(ports: Ports) {
    this.ports = ports;
  }

  create(name: string, scope: TokenScope): CreatedToken {
    const { crypto, clock, sql } = this.ports;
    const id = `tok-${crypto.randomHex(6)}`;
    const token = `sst_${crypto.randomHex(24)}`;
    const now = clock.now();
    sql.run('INSERT INTO api_tokens (id, name, scope, token_hash, created_at) VALUES (?, ?, ?, ?, ?)', id, name, scope, crypto.sha256Hex(token), now);
    return { id, name, scope, createdAt: iso(now), token };
  }

  list(): TokenView[] {
    return this.ports.sql.all<TokenRow>('SELECT * FROM api_tokens ORDER BY created_at DESC').map(view);
  }

  revoke(id: string): Result<TokenView> {
    const row = this.ports.sql.get<TokenRow>('UPDATE api_tokens SET revoked_at = COALESCE(revoked_at, ?) WHERE id = ? RETURNING *', this.ports.clock.now(), id);
    return row ? ok(view(row)) : fail(404, 'unknown_token', `token ${id} does not exist`);
  }

  /** The live token with this raw value (recording its use), or undefined. Lookup by hash: no secret is compared. */
  authenticate(raw: string): { id: string; scope: TokenScope } | undefined {
    if (!raw.startsWith('sst_')) return undefined;
    const row = this.ports.sql.get<TokenRow>('SELECT * FROM api_tokens WHERE token_hash = ? AND revoked_at IS NULL', this.ports.crypto.sha256Hex(raw));
    if (!row) return undefined;
    const now = this.ports.clock.now();
    if (row.last_used_at === null || now - row.last_used_at >= LAST_USED_RESOLUTION_MS) {
      this.ports.sql.run('UPDATE api_tokens SET last_used_at = ? WHERE id = ?', now, row.id);
    }
    return { id: row.id, scope: row.scope };
  }
}

function view(row: TokenRow): TokenView {
  return { id: row.id, name: row.name, scope: row.scope, createdAt: iso(row.created_at), lastUsedAt: isoOrUndefined(row.last_used_at), revokedAt: isoOrUndefined(row.revoked_at) };
}
