import type { CryptoPort } from './ports.ts';
import { timingSafeEqualText } from './result.ts';

/**
 * The one check of a worker's bearer token, wherever a worker proves who it is: the WebSocket
 * upgrade (app/sockets.ts), its hello (dispatcher.ts) and result uploads (app/routes/uploads.ts).
 * True when the worker exists and `token` hashes to its `token_hash` (compared in constant time).
 * A deleted worker keeps its last hash, so callers that must refuse one check `deleted_at` too.
 */
export function workerTokenMatches(crypto: CryptoPort, worker: { token_hash: string | null } | undefined, token: string | undefined): boolean {
  return !!token && !!worker?.token_hash && timingSafeEqualText(crypto.sha256Hex(token), worker.token_hash);
}
