// Under the `nodejs_compat` compatibility flag workerd implements node:crypto's createHash
// synchronously, so the core's CryptoPort stays synchronous on both hosts (no async hashing in
// the dispatcher for the sake of one host).
import { createHash } from 'node:crypto';
import type { CryptoPort } from '../core/ports.ts';

export const workerdCrypto: CryptoPort = {
  sha256Hex: (text) => createHash('sha256').update(text, 'utf8').digest('hex'),
  randomHex(bytes) {
    const buffer = crypto.getRandomValues(new Uint8Array(bytes));
    let hex = '';
    for (const byte of buffer) hex += byte.toString(16).padStart(2, '0');
    return hex;
  },
};
