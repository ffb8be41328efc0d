import { createServer, type IncomingMessage, type Server, type ServerResponse } from 'node:http';
import type { AddressInfo, Socket } from 'node:net';
import busboy from 'busboy';
import { WebSocketServer, type WebSocket } from 'ws';
import { SUBPROTOCOL } from '@studio-worker/protocol';
import { Changes } from './wait.ts';

/* eslint-disable @typescript-eslint/no-explicit-any */
export type Frame = Record<string, any> & { type: string };
export type HttpAnswer = { status: number; body?: unknown };

export interface RegisterRequestRecord {
  body: any;
  /** The x-studio-pool header, when the worker sent one. */
  pool?: string;
}
export interface PollRecord {
  requestId: string;
  authorization: string | undefined;
}
export interface UpgradeRecord {
  workerId: string;
  authorization: string | undefined;
  protocols: string | undefined;
  at: number;
}
export interface UploadRecord {
  workerId: string;
  jobId: string;
  authorization: string | undefined;
  fields: Record<string, string>;
  files: Array<{ field: string; filename: string; mimeType: string; bytes: Buffer }>;
  /** Set once the studio answered the upload. */
  answered?: boolean;
}

export const STUDIO_FEATURES = ['attempt', 'progress', 'cancel', 'resume'];

/**
 * A scriptable stand-in for the studio: real `node:http` + real `ws` on 127.0.0.1:0. It records
 * every registration call, upgrade, frame and upload, and by default answers like a friendly studio
 * (pending registrations, welcome on hello, acks for results). Tests replace the `on*` hooks.
 */
export class FakeStudio {
  readonly changes = new Changes();
  readonly registerRequests: RegisterRequestRecord[] = [];
  readonly polls: PollRecord[] = [];
  readonly upgrades: UpgradeRecord[] = [];
  readonly uploads: UploadRecord[] = [];
  readonly connections: FakeConnection[] = [];
  url = '';

  onRegisterRequest: (body: any, index: number) => HttpAnswer = (_body, index) => ({ status: 200, body: { requestId: `rr-${index + 1}`, status: 'pending' } });
  onPoll: (record: PollRecord, index: number) => HttpAnswer = () => ({ status: 200, body: { status: 'pending' } });
  onUpgrade: (record: UpgradeRecord, index: number) => 'accept' | HttpAnswer = () => 'accept';
  /** May answer later (a slow studio): the worker's upload stays open until the promise settles. */
  onUpload: (record: UploadRecord, index: number) => HttpAnswer | Promise<HttpAnswer> = () => ({ status: 200, body: { ok: true } });
  /** Answer hello with welcome (features below). */
  autoWelcome = true;
  welcomeFeatures: string[] = STUDIO_FEATURES;
  /** Ack every completeJson / fail. */
  autoAck = true;
  /** Answer heartbeats (a silent studio tests the read-idle timeout). */
  autoHeartbeatAck = true;
  /** Called for every frame after the built-in handling. */
  onFrame: (connection: FakeConnection, frame: Frame) => void = () => {};

  readonly #server: Server;
  readonly #wss = new WebSocketServer({ noServer: true, handleProtocols: (protocols) => (protocols.has(SUBPROTOCOL) ? SUBPROTOCOL : false) });
  readonly #sockets = new Set<Socket>();

  private constructor() {
    this.#server = createServer((req, res) => void this.#http(req, res));
    this.#server.on('connection', (socket) => {
      this.#sockets.add(socket);
      socket.on('close', () => this.#sockets.delete(socket));
    });
    this.#server.on('upgrade', (req, socket, head) => this.#upgrade(req, socket as Socket, head));
  }

  static async start(): Promise<FakeStudio> {
    const studio = new FakeStudio();
    await new Promise<void>((resolve) => studio.#server.listen(0, '127.0.0.1', resolve));
    studio.url = `http://127.0.0.1:${(studio.#server.address() as AddressInfo).port}/`;
    return studio;
  }

  async close(): Promise<void> {
    for (const connection of this.connections) connection.socket.terminate();
    for (const socket of this.#sockets) socket.destroy();
    this.#wss.close();
    await new Promise<void>((resolve) => this.#server.close(() => resolve()));
  }

  waitFor<T>(check: () => T | undefined, what: string, timeoutMs?: number): Promise<T> {
    return this.changes.waitFor(check, what, timeoutMs);
  }

  /** The n-th (0-based) WebSocket connection, once it exists. */
  connection(index: number, timeoutMs?: number): Promise<FakeConnection> {
    return this.waitFor(() => this.connections[index], `connection #${index + 1}`, timeoutMs);
  }

  /**
   * The n-th connection once the worker is past the welcome gate (its first heartbeat arrived);
   * only then are offers acted on.
   */
  async ready(index: number, timeoutMs?: number): Promise<FakeConnection> {
    const connection = await this.connection(index, timeoutMs);
    await connection.frame((frame) => frame.type === 'heartbeat', `the first heartbeat on connection #${index + 1}`, { timeoutMs });
    return connection;
  }

  /** Every frame of a type, over all connections. */
  frames(type?: string): Frame[] {
    return this.connections.flatMap((connection) => connection.frames.filter((frame) => type === undefined || frame.type === type));
  }

  async #http(req: IncomingMessage, res: ServerResponse): Promise<void> {
    const url = new URL(req.url ?? '/', 'http://x');
    const path = url.pathname;
    const reply = (answer: HttpAnswer) => {
      res.writeHead(answer.status, { 'content-type': 'application/json' });
      res.end(answer.body === undefined ? '' : JSON.stringify(answer.body));
      this.changes.signal();
    };
    if (req.method === 'POST' && path === '/graphics/api/workers/register-request') {
      const body = JSON.parse((await readBody(req)).toString('utf8'));
      this.registerRequests.push({ body, pool: req.headers['x-studio-pool'] as string | undefined });
      return reply(this.onRegisterRequest(body, this.registerRequests.length - 1));
    }
    const poll = /^\/graphics\/api\/workers\/register-requests\/([^/]+)$/.exec(path);
    if (req.method === 'GET' && poll) {
      const record = { requestId: decodeURIComponent(poll[1] ?? ''), authorization: req.headers.authorization };
      this.polls.push(record);
      return reply(this.onPoll(record, this.polls.length - 1));
    }
    const complete = /^\/graphics\/api\/workers\/([^/]+)\/jobs\/([^/]+)\/complete$/.exec(path);
    if (req.method === 'POST' && complete) {
      const record: UploadRecord = {
        workerId: decodeURIComponent(complete[1] ?? ''),
        jobId: decodeURIComponent(complete[2] ?? ''),
        authorization: req.headers.authorization,
        fields: {},
        files: [],
      };
      await parseMultipart(req, record);
      this.uploads.push(record);
      this.changes.signal();
      const answer = await this.onUpload(record, this.uploads.length - 1);
      record.answered = true;
      return reply(answer);
    }
    reply({ status: 404, body: { error: 'not_found', message: `no route ${req.method} ${path}` } });
  }

  #upgrade(req: IncomingMessage, socket: Socket, head: Buffer): void {
    const match = /^\/graphics\/api\/workers\/([^/]+)\/connect$/.exec(new URL(req.url ?? '/', 'http://x').pathname);
    const record: UpgradeRecord = {
      workerId: decodeURIComponent(match?.[1] ?? ''),
      authorization: req.headers.authorization,
      protocols: req.headers['sec-websocket-protocol'],
      at: performance.now(),
    };
    this.upgrades.push(record);
    const decision = match ? this.onUpgrade(record, this.upgrades.length - 1) : { status: 404, body: { error: 'not_found' } };
    if (decision !== 'accept') {
      const body = JSON.stringify(decision.body ?? {});
      socket.end(`HTTP/1.1 ${decision.status} Refused\r\ncontent-type: application/json\r\ncontent-length: ${Buffer.byteLength(body)}\r\nconnection: close\r\n\r\n${body}`);
      this.changes.signal();
      return;
    }
    this.#wss.handleUpgrade(req, socket, head, (ws) => {
      const connection = new FakeConnection(ws, record, this);
      this.connections.push(connection);
      this.changes.signal();
    });
  }

  /** Built-in studio behaviour for a frame (welcome on hello, acks for results). */
  handleFrame(connection: FakeConnection, frame: Frame): void {
    if (frame.type === 'hello' && this.autoWelcome) {
      connection.send({ type: 'welcome', workerId: connection.workerId, serverTime: new Date().toISOString(), protocolFeatures: this.welcomeFeatures });
    } else if (frame.type === 'heartbeat' && this.autoHeartbeatAck) {
      connection.send({ type: 'heartbeatAck' });
    } else if (frame.type === 'completeJson' && this.autoAck) {
      connection.send({ type: 'completeAck', jobId: frame.jobId, attempt: frame.attempt });
    } else if (frame.type === 'fail' && this.autoAck) {
      connection.send({ type: 'failAck', jobId: frame.jobId, attempt: frame.attempt });
    }
    this.onFrame(connection, frame);
  }
}

export class FakeConnection {
  readonly socket: WebSocket;
  readonly upgrade: UpgradeRecord;
  readonly workerId: string;
  readonly frames: Frame[] = [];
  closeInfo: { code: number; reason: string } | undefined;
  readonly #studio: FakeStudio;

  constructor(socket: WebSocket, upgrade: UpgradeRecord, studio: FakeStudio) {
    this.socket = socket;
    this.upgrade = upgrade;
    this.workerId = upgrade.workerId;
    this.#studio = studio;
    socket.on('message', (data) => {
      const frame = JSON.parse(data.toString()) as Frame;
      this.frames.push(frame);
      studio.handleFrame(this, frame);
      studio.changes.signal();
    });
    socket.on('close', (code, reason) => {
      this.closeInfo = { code, reason: reason.toString() };
      studio.changes.signal();
    });
    socket.on('error', () => {});
  }

  send(frame: Frame | string): void {
    if (this.socket.readyState === this.socket.OPEN) this.socket.send(typeof frame === 'string' ? frame : JSON.stringify(frame));
  }

  close(code: number, reason = ''): void {
    this.socket.close(code, reason);
  }

  /** The first frame (from index `after`) that matches. */
  frame(predicate: (frame: Frame) => boolean, what: string, options: { after?: number; timeoutMs?: number } = {}): Promise<Frame> {
    return this.#studio.waitFor(() => this.frames.slice(options.after ?? 0).find(predicate), what, options.timeoutMs);
  }

  /** The next frame of a type with this jobId. */
  jobFrame(type: string, jobId: string, options: { after?: number; timeoutMs?: number } = {}): Promise<Frame> {
    return this.frame((frame) => frame.type === type && frame.jobId === jobId, `${type} for ${jobId}`, options);
  }

  closed(timeoutMs?: number): Promise<{ code: number; reason: string }> {
    return this.#studio.waitFor(() => this.closeInfo, 'the connection to close', timeoutMs);
  }
}

function readBody(req: IncomingMessage): Promise<Buffer> {
  return new Promise((resolve, reject) => {
    const chunks: Buffer[] = [];
    req.on('data', (chunk: Buffer) => chunks.push(chunk));
    req.on('end', () => resolve(Buffer.concat(chunks)));
    req.on('error', reject);
  });
}

function parseMultipart(req: IncomingMessage, record: UploadRecord): Promise<void> {
  return new Promise((resolve, reject) => {
    const parser = busboy({ headers: req.headers });
    parser.on('field', (name, value) => {
      record.fields[name] = value;
    });
    parser.on('file', (field, stream, info) => {
      const chunks: Buffer[] = [];
      stream.on('data', (chunk: Buffer) => chunks.push(chunk));
      stream.on('end', () => record.files.push({ field, filename: info.filename ?? '', mimeType: info.mimeType, bytes: Buffer.concat(chunks) }));
    });
    parser.on('close', () => resolve());
    parser.on('error', reject);
    req.pipe(parser);
  });
}

/** A valid offer frame (synthetic engine unless told otherwise). */
export function offerFrame(options: {
  jobId: string;
  attempt?: number;
  kind?: 'llm' | 'image' | 'audio_tts' | 'audio_stt';
  engine?: string;
  delayMs?: number;
  prompt?: string;
}): Frame {
  const kind = options.kind ?? 'llm';
  const prompt = options.prompt ?? `prompt for ${options.jobId}`;
  const task =
    kind === 'llm'
      ? { kind, messages: [{ role: 'user', content: prompt }], maxTokens: 64, temperature: 0.7 }
      : kind === 'image'
        ? { kind, prompt, width: 64, height: 64, steps: 20, ext: 'png' }
        : kind === 'audio_tts'
          ? { kind, text: prompt, voice: 'default', ext: 'wav' }
          : { kind, inputUrl: `https://example.invalid/${options.jobId}.wav` };
  return {
    type: 'offer',
    claim: {
      jobId: options.jobId,
      gameId: 'game',
      assetName: `asset/${options.jobId}`,
      model: `${options.engine ?? 'synthetic'}-model`,
      vramGbEstimate: 0,
      task,
      modelSource: { engine: options.engine ?? 'synthetic', files: [], cliDefaults: options.delayMs ? { delayMs: options.delayMs } : {} },
      attempt: options.attempt ?? 1,
    },
  };
}
