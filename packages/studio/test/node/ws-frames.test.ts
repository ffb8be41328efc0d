// textFrames (src/node/ws-frames.ts) against ws 8's own framing (node_modules/ws/lib/sender.js,
// Sender.frame), and read back by ws's Receiver (what a worker's ws client runs).
import assert from 'node:assert/strict';
import { createRequire } from 'node:module';
import { describe, it } from 'node:test';
import { textFrames } from '../../src/node/ws-frames.ts';

const require = createRequire(import.meta.url);
// The classes `ws` exports as WebSocket.Sender / WebSocket.Receiver (untyped in @types/ws).
const ws = require('ws') as {
  Sender: { frame(data: string, options: object): Array<Buffer | string> };
  Receiver: new (options: object) => NodeJS.WritableStream & { on(event: 'message', listener: (data: Buffer, isBinary: boolean) => void): void };
};
const { Sender, Receiver } = ws;

function wsFrame(text: string): Buffer {
  const parts = Sender.frame(text, { fin: true, opcode: 1, mask: false, readOnly: false, rsv1: false });
  return Buffer.concat(parts.map((part) => (typeof part === 'string' ? Buffer.from(part) : part)));
}

// Each length class of RFC 6455 §5.2 and its edges, with multi-byte characters (bytes ≠ characters).
const texts = ['', 'a', 'x'.repeat(125), 'x'.repeat(126), 'é'.repeat(63), 'é'.repeat(64), 'y'.repeat(65_535), 'z'.repeat(65_536), '{"type":"offer","job":"🦊"}'];

describe('textFrames', () => {
  it('writes the same bytes as ws, frame by frame', () => {
    for (const text of texts) assert.deepEqual(textFrames([text]), wsFrame(text), `length ${text.length}`);
  });

  it('puts several frames back to back, which ws reads as the same messages in order', async () => {
    const received: string[] = [];
    const receiver = new Receiver({ isServer: false, maxPayload: 0 });
    receiver.on('message', (data, isBinary) => {
      assert.equal(isBinary, false);
      received.push(data.toString());
    });
    const joined = textFrames(texts);
    assert.deepEqual(joined, Buffer.concat(texts.map(wsFrame)));
    await new Promise<void>((resolve, reject) => receiver.write(joined, (error) => (error ? reject(error) : resolve())));
    assert.deepEqual(received, texts);
  });
});
