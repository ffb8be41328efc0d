import type { Ports } from './ports.ts';
import { timingSafeEqualText } from './result.ts';
import type { Stores } from './stores.ts';

const KEY = 'admin_token_hash';

/**
 * The operator's bearer token. Given by the environment (`STUDIO_ADMIN_TOKEN`), or generated at the
 * first start and shown once; only its hash is stored.
 */
export class AdminAuth {
  private readonly ports: Ports;
  private readonly stores: Stores;
  private hash: string | undefined;
  /**
   * The last bearer that matched the hash: compared as it is (in constant time), so the operator's
   * scripts do not pay a SHA-256 per request (about 5 µs of the create → offer path). Only ever a
   * token that verified; forgotten when the token rotates.
   */
  private accepted: string | undefined;

  constructor(ports: Ports, stores: Stores) {
    this.ports = ports;
    this.stores = stores;
  }

  /** Answers the raw token when it was generated now (print it once), else undefined. */
  init(fromEnv: string | undefined): { generated?: string } {
    this.accepted = undefined;
    if (fromEnv) {
      this.hash = this.ports.crypto.sha256Hex(fromEnv);
      return {};
    }
    const stored = this.stores.meta.get(KEY);
    if (stored) {
      this.hash = stored;
      return {};
    }
    return { generated: this.rotate() };
  }

  /** Mint a new token, store its hash, answer the raw token. */
  rotate(): string {
    const { crypto } = this.ports;
    const token = `sat_${crypto.randomHex(24)}`;
    this.hash = crypto.sha256Hex(token);
    this.accepted = undefined;
    this.stores.meta.set(KEY, this.hash);
    return token;
  }

  verify(token: string | undefined): boolean {
    if (!token || !this.hash) return false;
    if (this.accepted !== undefined && timingSafeEqualText(token, this.accepted)) return true;
    if (!timingSafeEqualText(this.ports.crypto.sha256Hex(token), this.hash)) return false;
    this.accepted = token;
    return true;
  }
}
