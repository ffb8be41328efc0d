// A minimal worker over the real protocol that holds a claim, so a test can upload (or abort
// uploads of) a file result the way a worker does: WebSocket hello → offer → accept → multipart POST.
import { once } from 'node:events';
import WebSocket from 'ws';
import { httpApiBase, parseStudioFrame, RESULT_FILE_FIELD, SUBPROTOCOL, workerConnectUrl, type JobOfferClaim } from '@studio-worker/protocol';
import { imageWorkerCapabilities } from '../../packages/studio/test/dashboard/scripted-worker.ts';
import type { StudioProc } from './processes.ts';

export interface HeldClaim {
  workerId: string;
  authToken: string;
  claim: JobOfferClaim;
  ws: WebSocket;
  /** The upload route for this claim (path only). */
  completePath: string;
  /** The multipart body of a complete upload of `bytes` and its content type. */
  multipart(bytes: Buffer, ext?: string): { body: Buffer; contentType: string };
  close(): void;
}

/** Create an image job and take its offer with a fresh worker; the claim stays held until `close`. */
export async function holdImageClaim(studio: StudioProc, prompt: string): Promise<HeldClaim> {
  const { workerId, authToken } = await studio.api.createWorker(`held-${prompt}`);
  const ws = new WebSocket(workerConnectUrl(`${studio.url}/`, workerId), SUBPROTOCOL, { headers: { authorization: `Bearer ${authToken}` } });
  ws.on('error', () => {});
  await once(ws, 'open');
  const offered = new Promise<JobOfferClaim>((resolve) =>
    ws.on('message', (data) => {
      const parsed = parseStudioFrame(data.toString());
      if (parsed.ok && parsed.frame.type === 'offer') resolve(parsed.frame.claim);
    }),
  );
  const capabilities = imageWorkerCapabilities(`held-${prompt}`);
  ws.send(JSON.stringify({ type: 'hello', authToken, capabilities }));
  let claimRef: JobOfferClaim | undefined;
  const heartbeat = setInterval(() => {
    const inFlight = claimRef ? [{ jobId: claimRef.jobId, attempt: claimRef.attempt, state: 'running' }] : [];
    if (ws.readyState === ws.OPEN) ws.send(JSON.stringify({ type: 'heartbeat', capabilities, currentJobId: claimRef?.jobId, inFlight }));
  }, 1_000);
  await studio.api.createJobs([{ model: 'synthetic-image', task: { kind: 'image', prompt } }]);
  const claim = await offered;
  claimRef = claim;
  ws.send(JSON.stringify({ type: 'accept', jobId: claim.jobId, attempt: claim.attempt }));
  const completePath = `${new URL(httpApiBase(`${studio.url}/`)).pathname}/workers/${workerId}/jobs/${claim.jobId}/complete`;
  return {
    workerId,
    authToken,
    claim,
    ws,
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
