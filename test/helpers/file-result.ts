// A minimal worker over the real protocol that holds a claim, so a test can upload (or abort
// uploads of) a file result the way a worker does: WebSocket hello → offer → accept → multipart POST.
import { once } from 'node:events';
import WebSocket from 'ws';
import { httpApiBase, parseStudioFrame, RESULT_FILE_FIELD, SUBPROTOCOL, workerConnectUrl, type JobOfferClaim, type StudioFrame } from '@studio-worker/protocol';
import { imageWorkerCapabilities } from '../../packages/studio/test/dashboard/scripted-worker.ts';
import type { StudioProc } from './processes.ts';

export interface HeldClaim {
  workerId: string;
  authToken: string;
  claim: JobOfferClaim;
  ws: WebSocket;
  /** Every frame the studio sent on this socket, parsed, in order. */
  frames: StudioFrame[];
  /** Wait for the first frame (from the start) that `match` accepts. */
  frame(match: (frame: StudioFrame) => boolean, timeoutMs?: number): Promise<StudioFrame>;
  /** Send a frame as this worker. */
  send(frame: Record<string, unknown>): void;
  /** The upload route for this claim (path only). */
  completePath: string;
  /** The multipart body of a complete upload of `bytes` and its content type. */
  multipart(bytes: Buffer, ext?: string): { body: Buffer; contentType: string };
  close(): void;
}

/**
 * Create an image job and take its offer with a fresh worker; the claim stays held until `close`
 * (with `heartbeats: false` the worker goes silent after its accept, so its lease runs out while
 * the socket stays open).
 */
export async function holdImageClaim(studio: StudioProc, prompt: string, options: { heartbeats?: boolean } = {}): Promise<HeldClaim> {
  const { workerId, authToken } = await studio.api.createWorker(`held-${prompt}`);
  const ws = new WebSocket(workerConnectUrl(`${studio.url}/`, workerId), SUBPROTOCOL, { headers: { authorization: `Bearer ${authToken}` } });
  ws.on('error', () => {});
  await once(ws, 'open');
  const frames: StudioFrame[] = [];
  const waiters: Array<() => void> = [];
  ws.on('message', (data) => {
    const parsed = parseStudioFrame(data.toString());
    if (!parsed.ok) return;
    frames.push(parsed.frame);
    for (const wake of waiters.splice(0)) wake();
  });
  const frame = async (match: (f: StudioFrame) => boolean, timeoutMs = 20_000): Promise<StudioFrame> => {
    const deadline = Date.now() + timeoutMs;
    for (;;) {
      const found = frames.find(match);
      if (found) return found;
      if (Date.now() > deadline) throw new Error(`no such frame in ${timeoutMs} ms; got ${JSON.stringify(frames.map((f) => f.type))}`);
      await new Promise<void>((resolve) => {
        const timer = setTimeout(resolve, Math.max(0, deadline - Date.now()) + 1);
        waiters.push(() => {
          clearTimeout(timer);
          resolve();
        });
      });
    }
  };
  const send = (f: Record<string, unknown>) => ws.send(JSON.stringify(f));
  const capabilities = imageWorkerCapabilities(`held-${prompt}`);
  ws.send(JSON.stringify({ type: 'hello', authToken, capabilities }));
  let claimRef: JobOfferClaim | undefined;
  const heartbeat = setInterval(() => {
    if (options.heartbeats === false) return;
    const inFlight = claimRef ? [{ jobId: claimRef.jobId, attempt: claimRef.attempt, state: 'running' }] : [];
    if (ws.readyState === ws.OPEN) ws.send(JSON.stringify({ type: 'heartbeat', capabilities, currentJobId: claimRef?.jobId, inFlight }));
  }, 1_000);
  await studio.api.createJobs([{ model: 'synthetic-image', task: { kind: 'image', prompt } }]);
  const offer = await frame((f) => f.type === 'offer');
  const claim = (offer as Extract<StudioFrame, { type: 'offer' }>).claim;
  claimRef = claim;
  send({ type: 'accept', jobId: claim.jobId, attempt: claim.attempt });
  const completePath = `${new URL(httpApiBase(`${studio.url}/`)).pathname}/workers/${workerId}/jobs/${claim.jobId}/complete`;
  return {
    workerId,
    authToken,
    claim,
    ws,
    frames,
    frame,
    send,
    completePath,
    multipart(bytes: Buffer, ext = 'png') {
      const boundary = `----studio-test-${Math.random().toString(16).slice(2)}`;
      const field = (name: string, value: string) => `--${boundary}\r\nContent-Disposition: form-data; name="${name}"\r\n\r\n${value}\r\n`;
      const head = field('ext', ext) + field('attempt', String(claim.attempt)) + `--${boundary}\r\nContent-Disposition: form-data; name="${RESULT_FILE_FIELD}"; filename="result.${ext}"\r\nContent-Type: application/octet-stream\r\n\r\n`;
      return { body: Buffer.concat([Buffer.from(head), bytes, Buffer.from(`\r\n--${boundary}--\r\n`)]), contentType: `multipart/form-data; boundary=${boundary}` };
    },
    close() {
      clearInterval(heartbeat);
      ws.close(1000);
    },
  };
}

/** The raw request bytes of a POST with this body (only `bodyBytes` of it, when cut short). */
export function rawPost(path: string, port: number, headers: Record<string, string>, body: Buffer, bodyBytes = body.length): Buffer {
  const head = [`POST ${path} HTTP/1.1`, `Host: 127.0.0.1:${port}`, `Content-Length: ${body.length}`, ...Object.entries(headers).map(([k, v]) => `${k}: ${v}`)].join('\r\n');
  return Buffer.concat([Buffer.from(`${head}\r\n\r\n`, 'latin1'), body.subarray(0, bodyBytes)]);
}

/** Upload `bytes` as the held claim's result; answers the studio's status and body. */
export async function uploadResult(studio: StudioProc, held: HeldClaim, bytes: Buffer): Promise<{ status: number; body: string }> {
  const { body, contentType } = held.multipart(bytes);
  const res = await fetch(`${studio.url}${held.completePath}`, {
    method: 'POST',
    headers: { authorization: `Bearer ${held.authToken}`, 'content-type': contentType },
    body: new Uint8Array(body),
  });
  return { status: res.status, body: await res.text() };
}
