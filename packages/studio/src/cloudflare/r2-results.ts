import type { ResultStore, StagedResult, StoredResult } from '../app/host.ts';
import type { CryptoPort } from '../core/ports.ts';
import type { R2Bucket, R2MultipartUpload, R2UploadedPart } from './types.ts';

/**
 * R2's floor for every part of a multipart upload but the last; the parts must also all be the
 * same size except the last (R2 docs, "Multipart upload"). 5 MiB is both our part size and the
 * most of a result ever held in memory.
 */
export const R2_PART_BYTES = 5 * 1024 * 1024;

/**
 * Result files in R2 (the app's ResultStore port). An upload streams: a result smaller than one
 * part is collected and `put` once; a larger one goes through a multipart upload in parts of
 * `R2_PART_BYTES`, so at most one part is in memory whatever the result's size. R2 has no rename,
 * so the store picks the final key before the first byte (`results/<jobId>-<random>`, unique per
 * upload, so a stale upload never overwrites) and `commit` only answers it: no reader looks for a
 * key before SQL records it. A write that fails (the body errors, R2 refuses) and a discarded one
 * leave nothing behind: the multipart upload is aborted, a put object deleted.
 */
export class R2Results implements ResultStore {
  private readonly bucket: R2Bucket;
  private readonly crypto: CryptoPort;
  private readonly partBytes: number;

  constructor(bucket: R2Bucket, crypto: CryptoPort, partBytes = R2_PART_BYTES) {
    this.bucket = bucket;
    this.crypto = crypto;
    this.partBytes = partBytes;
  }

  async stage(body: ReadableStream<Uint8Array>, options: { jobId: string; maxBytes: number }): Promise<StagedResult> {
    const key = `results/${options.jobId.replace(/[^A-Za-z0-9._-]/g, '_')}-${this.crypto.randomHex(8)}`;
    const bytes = await this.write(key, body);
    return {
      bytes,
      commit: async () => key,
      discard: () => this.remove(key),
    };
  }

  private async write(key: string, body: ReadableStream<Uint8Array>): Promise<number> {
    const reader = body.getReader();
    let part = new Uint8Array(this.partBytes);
    let filled = 0;
    let size = 0;
    let upload: R2MultipartUpload | undefined;
    const parts: R2UploadedPart[] = [];
    try {
      for (;;) {
        const { done, value } = await reader.read();
        if (done) break;
        size += value.byteLength;
        let offset = 0;
        while (offset < value.byteLength) {
          const take = Math.min(this.partBytes - filled, value.byteLength - offset);
          part.set(value.subarray(offset, offset + take), filled);
          filled += take;
          offset += take;
          if (filled === this.partBytes) {
            upload ??= await this.bucket.createMultipartUpload(key);
            parts.push(await upload.uploadPart(parts.length + 1, part));
            // A fresh buffer: the runtime may still read the one it was given.
            part = new Uint8Array(this.partBytes);
            filled = 0;
          }
        }
      }
      if (!upload) {
        await this.bucket.put(key, part.subarray(0, filled));
      } else {
        if (filled > 0) parts.push(await upload.uploadPart(parts.length + 1, part.subarray(0, filled)));
        await upload.complete(parts);
      }
      return size;
    } catch (error) {
      await reader.cancel().catch(() => {});
      if (upload) await upload.abort().catch(() => {});
      else await this.remove(key);
      throw error;
    }
  }

  async open(key: string): Promise<StoredResult | undefined> {
    const head = await this.bucket.head(key);
    if (!head) return undefined;
    return {
      size: head.size,
      stream: async (start, end) => {
        if (end < start) return new ReadableStream({ start: (controller) => controller.close() });
        // `end` is inclusive, as in an HTTP Range.
        const object = await this.bucket.get(key, { range: { offset: start, length: end - start + 1 } });
        if (!object) throw new Error(`result ${key} was removed while being read`);
        return object.body;
      },
    };
  }

  async remove(key: string): Promise<void> {
    try {
      await this.bucket.delete(key);
    } catch {
      // Never throws (the port's contract): a key R2 cannot delete now is left to retention.
    }
  }
}
