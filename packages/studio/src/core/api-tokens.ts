import type { CreatedToken, TokenScope, TokenView } from '@studio-worker/protocol';
import type { TokenRow } from './api-token-store.ts';
import type { Ports } from './ports.ts';
import { fail, iso, isoOrUndefined, ok, type Result } from './result.ts';
import type { Stores } from './stores.ts';

/** How often last-used is written back: once a minute per token, not once per request. */
const LAST_USED_RESOLUTION_MS = 60_000;

/**
 * API tokens with a scope, for scripts and integrations. The raw token (`sst_…`) is shown once at
 * creation; only its SHA-256 is stored. The bootstrap admin token (AdminAuth) stays separate.
 */
export class ApiTokens {
  private readonly ports: Ports;
  private readonly stores: Stores;
  constructor(ports: Ports, stores: Stores) {
    this.ports = ports;
    this.stores = stores;
  }

  create(name: string, scope: TokenScope): CreatedToken {
    const { crypto, clock } = this.ports;
    const id = `tok-${crypto.randomHex(6)}`;
    const token = `sst_${crypto.randomHex(24)}`;
    const now = clock.now();
    this.stores.apiTokens.insert(id, name, scope, crypto.sha256Hex(token), now);
    return { id, name, scope, createdAt: iso(now), token };
  }

  list(): TokenView[] {
    return this.stores.apiTokens.list().map(view);
  }

  revoke(id: string): Result<TokenView> {
    const row = this.stores.apiTokens.revoke(id, this.ports.clock.now());
    return row ? ok(view(row)) : fail(404, 'unknown_token', `token ${id} does not exist`);
  }

  /** The live token with this raw value (recording its use), or undefined. Lookup by hash: no secret is compared. */
  authenticate(raw: string): { id: string; scope: TokenScope } | undefined {
    if (!raw.startsWith('sst_')) return undefined;
    const row = this.stores.apiTokens.liveByHash(this.ports.crypto.sha256Hex(raw));
    if (!row) return undefined;
    const now = this.ports.clock.now();
    if (row.last_used_at === null || now - row.last_used_at >= LAST_USED_RESOLUTION_MS) {
      this.stores.apiTokens.touch(row.id, now);
    }
    return { id: row.id, scope: row.scope };
  }
}

function view(row: TokenRow): TokenView {
  return { id: row.id, name: row.name, scope: row.scope, createdAt: iso(row.created_at), lastUsedAt: isoOrUndefined(row.last_used_at), revokedAt: isoOrUndefined(row.revoked_at) };
}
