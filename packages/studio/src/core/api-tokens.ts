import { z } from 'zod';
import { TokenScope, type CreatedToken, type TokenView } from '@studio-worker/protocol';
import type { TokenRow } from './api-token-store.ts';
import type { CryptoPort, Ports } from './ports.ts';
import { fail, iso, isoOrUndefined, ok, type Result } from './result.ts';
import type { Stores } from './stores.ts';

/** How often last-used is written back: once a minute per token, not once per request. */
const LAST_USED_RESOLUTION_MS = 60_000;

/**
 * A token as another pool stores it: everything but the raw token (`PUT /admin/tokens/:id`, which
 * the Cloudflare Worker calls to copy a token made in `default` into every other pool).
 */
export const TokenRecord = z.object({
  name: z.string().min(1).max(100),
  scope: TokenScope,
  tokenHash: z.string().regex(/^[0-9a-f]{64}$/, 'the SHA-256 of the token, 64 lowercase hex digits'),
  createdAt: z.iso.datetime(),
});
export type TokenRecord = z.infer<typeof TokenRecord>;

/** What is stored of a raw token (and looked up by): its SHA-256. */
function hashToken(crypto: CryptoPort, raw: string): string {
  return crypto.sha256Hex(raw);
}

/** The record another pool adopts for a token just created (the raw token stays out of it). */
export function tokenRecordOf(created: CreatedToken, crypto: CryptoPort): TokenRecord {
  return { name: created.name, scope: created.scope, tokenHash: hashToken(crypto, created.token), createdAt: created.createdAt };
}

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
    this.stores.apiTokens.insert(id, name, scope, hashToken(crypto, token), now);
    return { id, name, scope, createdAt: iso(now), token };
  }

  /**
   * Take in a token made elsewhere (another pool), under its own id: stored as it is there, so the
   * same raw token authenticates here. Repeating it is harmless; an id already used for another
   * token, or a hash already used under another id, is refused.
   */
  adopt(id: string, record: TokenRecord): Result<TokenView> {
    if (!/^tok-[0-9a-f]{1,64}$/.test(id)) return fail(400, 'invalid_request', `token id ${id.slice(0, 80)} is not a token id (tok-…)`);
    const row = this.stores.apiTokens.adopt(id, record.name, record.scope, record.tokenHash, Date.parse(record.createdAt));
    if (!row || row.token_hash !== record.tokenHash || row.id !== id) {
      return fail(409, 'conflict', `token ${id} exists here as a different token (or its hash under another id); revoke it before copying it again`);
    }
    return ok(view(row));
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
    const row = this.stores.apiTokens.liveByHash(hashToken(this.ports.crypto, raw));
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
