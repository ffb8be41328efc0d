import { createHash, randomFillSync } from 'node:crypto';
import type { CryptoPort } from '../core/ports.ts';

/**
 * Random bytes for ids and tokens come from one pooled buffer refilled from the CSPRNG: the same
 * randomness as a `randomBytes` call each, without a call into the system per job id.
 */
const POOL_BYTES = 4096;
const pool = Buffer.alloc(POOL_BYTES);
let used = POOL_BYTES;

function randomHex(bytes: number): string {
  if (bytes > POOL_BYTES) return randomFillSync(Buffer.alloc(bytes)).toString('hex');
  if (used + bytes > POOL_BYTES) {
    randomFillSync(pool);
    used = 0;
  }
  const hex = pool.toString('hex', used, used + bytes);
  used += bytes; // never hand out the same bytes twice

  return hex;
}

export const nodeCrypto: CryptoPort = {
  sha256Hex: (text) => createHash('sha256').update(text, 'utf8').digest('hex'),
  randomHex,
};
