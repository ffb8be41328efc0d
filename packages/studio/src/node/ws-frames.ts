/**
 * Server-to-client WebSocket text frames built by hand (RFC 6455 §5.2: FIN + opcode 1, no mask, a
 * 7-, 16- or 64-bit payload length), several into one Buffer: a commit releases a worker's frames
 * together (a result's ack and the next offer), and one Buffer is one `socket.write` instead of
 * `ws`'s two writes per frame (header, payload) plus its per-send options and byte counting.
 * The same bytes as `ws` 8's `Sender.frame(text, { fin: true, opcode: 1, mask: false })`
 * (test/node/ws-frames.test.ts compares them).
 */
export function textFrames(texts: readonly string[]): Buffer {
  const lengths = new Array<number>(texts.length);
  let total = 0;
  for (let i = 0; i < texts.length; i++) {
    const n = Buffer.byteLength(texts[i] as string);
    lengths[i] = n;
    total += n + (n < 126 ? 2 : n < 65_536 ? 4 : 10);
  }
  const out = Buffer.allocUnsafe(total);
  let at = 0;
  for (let i = 0; i < texts.length; i++) {
    const n = lengths[i] as number;
    out[at++] = 0x81;
    if (n < 126) {
      out[at++] = n;
    } else if (n < 65_536) {
      out[at++] = 126;
      out.writeUInt16BE(n, at);
      at += 2;
    } else {
      out[at++] = 127;
      out.writeUInt32BE(Math.floor(n / 2 ** 32), at);
      out.writeUInt32BE(n >>> 0, at + 4);
      at += 8;
    }
    at += out.write(texts[i] as string, at, 'utf8');
  }
  return out;
}
