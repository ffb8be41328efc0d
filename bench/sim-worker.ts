import { WebSocket } from 'ws';
import {
  HelloFrame,
  SUBPROTOCOL,
  WelcomeFrame,
  type CompleteJsonFrame,
  type HeartbeatFrame,
  type InFlightJob,
  type WorkerCapabilities,
} from '@studio-worker/protocol';
import { BenchError } from './errors.ts';

/** What a simulated worker reports back to the bench. Times are `performance.now()` of this process. */
export interface SimWorkerEvents {
  offer(jobId: string, at: number): void;
  completed(jobId: string, at: number): void;
  /** An `error` frame from the studio after the welcome (stale_attempt, protocol_violation…). */
  studioError(workerId: string, code: string, message: string): void;
  /** The socket closed while the bench still needed it. */
  lost(workerId: string, code: number, reason: string): void;
}

export interface SimWorkerOptions {
  /** `ws://127.0.0.1:<port>` (no path). */
  wsBase: string;
  workerId: string;
  authToken: string;
  events: SimWorkerEvents;
  heartbeatMs?: number;
}

/** A worker that runs only the synthetic LLM and does nothing with a job: the "0 ms engine". */
export function benchCapabilities(workerId: string): WorkerCapabilities {
  return {
    machineName: `bench-${workerId}`,
    username: 'bench',
    agentVersion: '0.1.0',
    engine: 'synthetic',
    vramTotalGb: 0,
    vramThresholdGb: 0,
    autoEnabled: true,
    autoStart: false,
    userPresence: 'idle',
    supportedModels: ['synthetic', 'synthetic-llm'],
    taskKinds: ['llm'],
    supportedModelsPerKind: { llm: ['synthetic', 'synthetic-llm'] },
    protocolFeatures: ['attempt', 'progress', 'cancel', 'resume', 'extended-offers'],
  };
}

/** The only parts of an offer the simulated engine looks at. */
interface OfferShape {
  claim: { jobId: string; attempt?: number; task: { messages?: Array<{ content: string }> } };
}

/**
 * One simulated worker on a real WebSocket. On `offer` it answers `accept` and `completeJson` at
 * once. Frames in the hot path are read with JSON.parse only; the schemas check the welcome and the
 * hello, which happen once.
 */
export class SimWorker {
  readonly workerId: string;
  private readonly options: SimWorkerOptions;
  private readonly capabilities: WorkerCapabilities;
  private ws: WebSocket | undefined;
  private heartbeat: NodeJS.Timeout | undefined;
  /** Results sent and not yet acknowledged (reported in heartbeats, as the resume feature asks). */
  private readonly unacked = new Map<string, number | undefined>();
  private closing = false;
  offers = 0;
  completes = 0;

  constructor(options: SimWorkerOptions) {
    this.options = options;
    this.workerId = options.workerId;
    this.capabilities = benchCapabilities(options.workerId);
  }

  /** Open the socket, say hello, resolve on welcome. */
  connect(timeoutMs = 10_000): Promise<void> {
    const { wsBase, workerId, authToken } = this.options;
    const url = `${wsBase}/graphics/api/workers/${encodeURIComponent(workerId)}/connect`;
    const ws = new WebSocket(url, SUBPROTOCOL, { headers: { Authorization: `Bearer ${authToken}` }, perMessageDeflate: false });
    this.ws = ws;
    const hello = HelloFrame.parse({ type: 'hello', authToken, capabilities: this.capabilities, inFlight: [] });

    return new Promise<void>((resolve, reject) => {
      const timer = setTimeout(() => {
        ws.terminate();
        reject(new BenchError('worker_connect_failed', `worker ${workerId} got no welcome within ${timeoutMs} ms`));
      }, timeoutMs);
      let welcomed = false;
      ws.once('open', () => ws.send(JSON.stringify(hello)));
      ws.once('unexpected-response', (_req, res) => {
        clearTimeout(timer);
        reject(new BenchError('worker_connect_failed', `the studio refused the socket of worker ${workerId} with HTTP ${res.statusCode}`));
      });
      ws.on('error', (error) => {
        if (welcomed) return; // the close event follows and reports it
        clearTimeout(timer);
        reject(new BenchError('worker_connect_failed', `worker ${workerId} could not connect: ${error.message}`));
      });
      ws.on('close', (code, reason) => {
        clearInterval(this.heartbeat);
        if (!welcomed) {
          clearTimeout(timer);
          reject(new BenchError('worker_connect_failed', `the studio closed the socket of worker ${workerId} before the welcome (${code} ${reason.toString()})`));
        } else if (!this.closing) {
          this.options.events.lost(workerId, code, reason.toString());
        }
      });
      ws.on('message', (data, isBinary) => {
        const at = performance.now();
        if (isBinary) return;
        const text = data.toString();
        if (!welcomed) {
          const welcome = WelcomeFrame.safeParse(JSON.parse(text));
          if (!welcome.success) {
            clearTimeout(timer);
            ws.terminate();
            reject(new BenchError('worker_connect_failed', `worker ${workerId} expected a welcome, got: ${text.slice(0, 300)}`));
            return;
          }
          welcomed = true;
          clearTimeout(timer);
          this.heartbeat = setInterval(() => this.sendHeartbeat(), this.options.heartbeatMs ?? 5000);
          resolve();
          return;
        }
        this.onFrame(text, at);
      });
    });
  }

  private onFrame(text: string, at: number): void {
    const frame = JSON.parse(text) as { type: string };
    switch (frame.type) {
      case 'offer':
        return this.onOffer(frame as unknown as OfferShape, at);
      case 'completeAck': {
        const { jobId } = frame as unknown as { jobId: string };
        this.unacked.delete(jobId);
        this.completes++;
        this.options.events.completed(jobId, at);
        return;
      }
      case 'error': {
        const { code, message } = frame as unknown as { code: string; message: string };
        this.options.events.studioError(this.workerId, code, message);
        return;
      }
      default:
        return; // heartbeatAck, cancel (nothing runs long enough to stop)
    }
  }

  private onOffer(offer: OfferShape, at: number): void {
    const { jobId, attempt } = offer.claim;
    this.offers++;
    this.options.events.offer(jobId, at);
    const ws = this.ws as WebSocket;
    ws.send(`{"type":"accept","jobId":${JSON.stringify(jobId)}${attempt === undefined ? '' : `,"attempt":${attempt}`}}`);
    const prompt = offer.claim.task.messages?.at(-1)?.content ?? '';
    const complete: CompleteJsonFrame = { type: 'completeJson', jobId, attempt, result: { ok: true }, prompt };
    ws.send(JSON.stringify(complete));
    this.unacked.set(jobId, attempt);
  }

  private sendHeartbeat(): void {
    const inFlight: InFlightJob[] = [...this.unacked].map(([jobId, attempt]) => ({ jobId, attempt, state: 'finished' }));
    const frame: HeartbeatFrame = { type: 'heartbeat', capabilities: this.capabilities, inFlight };
    if (this.ws?.readyState === WebSocket.OPEN) this.ws.send(JSON.stringify(frame));
  }

  /** Close the socket (normal closure); the studio keeps the worker registered. */
  close(): void {
    this.closing = true;
    clearInterval(this.heartbeat);
    this.ws?.close(1000, 'bench finished');
  }
}
