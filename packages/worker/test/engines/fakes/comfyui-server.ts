import { randomUUID } from 'node:crypto';
import { mkdir, mkdtemp, readFile, rm, writeFile } from 'node:fs/promises';
import { createServer, type IncomingMessage, type Server, type ServerResponse } from 'node:http';
import type { AddressInfo, Socket } from 'node:net';
import { tmpdir } from 'node:os';
import { join, normalize, sep } from 'node:path';
import sharp from 'sharp';
import { WebSocketServer, type WebSocket } from 'ws';
import { Changes } from '../../helpers/wait.ts';

/**
 * Mimics ComfyUI 0.8.1 (comfyanonymous/ComfyUI at 071ff3e2: server.py, execution.py, main.py,
 * protocol.py).
 * A fake ComfyUI: real HTTP and WebSocket on 127.0.0.1, the routes and JSON shapes of ComfyUI's
 * server.py / execution.py / main.py, and a one-at-a-time executor that walks the
 * workflow's nodes, reports sampler steps, and writes real PNG / animated WebP files the size of the
 * workflow's EmptyLatentImage. Tests script its behaviour (slow steps, crashes, a silent socket,
 * late history, refused connections) and read what it received.
 */

export interface FakeBehaviour {
  /** Time per sampler step. */
  stepMs: number;
  /** Sampler steps regardless of the workflow's `steps` input. */
  steps?: number;
  /** Raise `execution_error` in the sampler at this (1-based) step. */
  crashAtStep?: number;
  crashException: { type: string; message: string };
  /** Send no WebSocket frames at all for the prompt (not even on reconnect); the work still finishes. */
  silent: boolean;
  /** Between `execution_success` and the history entry (real ComfyUI: a short gap; here scriptable). */
  historyDelayMs: number;
  /** Send a binary preview frame with every step, as latent previews do. */
  previews: boolean;
  /** Behave like ComfyUI before client-chosen prompt ids: ignore `prompt_id` and pick one. */
  ignoreClientPromptId: boolean;
}

export const DEFAULT_BEHAVIOUR: FakeBehaviour = {
  stepMs: 5,
  crashException: { type: 'torch.OutOfMemoryError', message: 'CUDA out of memory. Tried to allocate 2.00 GiB' },
  silent: false,
  historyDelayMs: 0,
  previews: false,
  ignoreClientPromptId: false,
};

type Workflow = Record<string, { class_type: string; inputs: Record<string, unknown> }>;

export interface ReceivedPrompt {
  promptId: string;
  clientId: string | undefined;
  /** The `prompt` field exactly as posted (the filled workflow). */
  workflow: Workflow;
  /** The whole POST body. */
  body: Record<string, unknown>;
}

interface QueueItem {
  number: number;
  promptId: string;
  workflow: Workflow;
  extraData: Record<string, unknown>;
  outputNodes: string[];
  behaviour: FakeBehaviour;
  stop: AbortController;
  interrupted: boolean;
}

interface FileRef {
  filename: string;
  subfolder: string;
  type: string;
}

const OUTPUT_CLASSES = new Set(['SaveImage', 'PreviewImage', 'SaveAnimatedWEBP']);
const SAMPLER_CLASSES = new Set(['KSampler', 'KSamplerAdvanced', 'SamplerCustom', 'SamplerCustomAdvanced']);
const KNOWN_CLASSES = new Set([
  ...OUTPUT_CLASSES,
  ...SAMPLER_CLASSES,
  'CheckpointLoaderSimple',
  'CLIPTextEncode',
  'EmptyLatentImage',
  'VAEDecode',
  'BrokenNode',
]);

export class FakeComfyUI {
  readonly url: string;
  readonly port: number;
  /** What the next `POST /prompt` will run under; changes apply to prompts queued afterwards. */
  behaviour: FakeBehaviour = { ...DEFAULT_BEHAVIOUR };
  readonly prompts: ReceivedPrompt[] = [];
  readonly interrupts: Array<{ promptId: string | undefined; stopped: string | undefined }> = [];
  readonly queueDeletes: string[][] = [];
  readonly historyDeletes: string[][] = [];
  /** Every `POST /free` body, with how many prompts had been received when it came. */
  readonly frees: Array<{ body: unknown; afterPrompts: number }> = [];
  /** `METHOD /path` of every HTTP request, in order. */
  readonly requests: string[] = [];
  /** WebSocket connections by client id, in order (a reconnect shows up twice). */
  readonly wsConnections: string[] = [];
  /** Signalled on every request, connection and execution event. */
  readonly changes = new Changes();

  readonly #server: Server;
  readonly #wss: WebSocketServer;
  readonly #outputRoot: string;
  readonly #sockets = new Map<string, WebSocket>();
  readonly #silentClients = new Set<string>();
  /** Prompts that died with a restart: they leave no trace. */
  readonly #forgotten = new Set<string>();
  readonly #connections = new Set<Socket>();
  readonly #history = new Map<string, Record<string, unknown>>();
  readonly #pending: QueueItem[] = [];
  #running: QueueItem | undefined;
  #lastNode: string | undefined;
  #number = 0;
  #fileCounter = 0;
  #down = false;

  private constructor(server: Server, wss: WebSocketServer, outputRoot: string) {
    this.#server = server;
    this.#wss = wss;
    this.#outputRoot = outputRoot;
    this.port = (server.address() as AddressInfo).port;
    this.url = `http://127.0.0.1:${this.port}`;
  }

  static async start(behaviour: Partial<FakeBehaviour> = {}): Promise<FakeComfyUI> {
    const outputRoot = await mkdtemp(join(tmpdir(), 'fake-comfyui-'));
    await Promise.all(['output', 'temp', 'input'].map((dir) => mkdir(join(outputRoot, dir))));
    const server = createServer();
    const wss = new WebSocketServer({ noServer: true });
    await new Promise<void>((resolve) => server.listen(0, '127.0.0.1', resolve));
    const fake = new FakeComfyUI(server, wss, outputRoot);
    fake.behaviour = { ...DEFAULT_BEHAVIOUR, ...behaviour };
    server.on('connection', (socket) => {
      fake.#connections.add(socket);
      socket.on('close', () => fake.#connections.delete(socket));
    });
    server.on('request', (req, res) => void fake.#handle(req, res));
    server.on('upgrade', (req, socket, head) => fake.#upgrade(req, socket as Socket, head));
    return fake;
  }

  /** Resolves when `check` answers something other than undefined (re-checked on every change). */
  waitFor<T>(check: () => T | undefined, what: string, timeoutMs?: number): Promise<T> {
    return this.changes.waitFor(check, what, timeoutMs);
  }

  /** The prompt ComfyUI is executing right now, if any. */
  get runningPromptId(): string | undefined {
    return this.#running?.promptId;
  }

  historyOf(promptId: string): Record<string, unknown> | undefined {
    return this.#history.get(promptId);
  }

  /**
   * The server dies: every connection is cut and the port stops listening, so the next connect is
   * refused (ECONNREFUSED), as when ComfyUI crashes or is stopped mid-job.
   */
  async goDown(): Promise<void> {
    if (this.#down) return;
    this.#down = true;
    this.#running?.stop.abort();
    for (const ws of this.#wss.clients) ws.terminate();
    for (const socket of this.#connections) socket.destroy();
    await new Promise<void>((resolve) => this.#server.close(() => resolve()));
    this.changes.signal();
  }

  /**
   * ComfyUI restarts: sockets drop, the running prompt dies without a history entry, the queue and
   * history are empty afterwards, and the server listens again at once.
   */
  restart(): void {
    const running = this.#running;
    if (running) {
      this.#forgotten.add(running.promptId);
      running.stop.abort();
    }
    this.#pending.splice(0);
    this.#history.clear();
    this.#silentClients.clear();
    for (const ws of this.#wss.clients) ws.terminate();
    this.#sockets.clear();
    this.changes.signal();
  }

  async close(): Promise<void> {
    await this.goDown();
    this.#wss.close();
    await rm(this.#outputRoot, { recursive: true, force: true });
  }

  // ------------------------------------------------------------------ WebSocket

  #upgrade(req: IncomingMessage, socket: Socket, head: Buffer): void {
    const url = new URL(req.url ?? '/', this.url);
    if (url.pathname !== '/ws' && url.pathname !== '/api/ws') {
      socket.destroy();
      return;
    }
    this.#wss.handleUpgrade(req, socket, head, (ws) => {
      // server.py: a given clientId replaces that client's old socket; none gets a fresh hex id.
      const sid = url.searchParams.get('clientId') || randomUUID().replaceAll('-', '');
      this.#sockets.get(sid)?.terminate();
      this.#sockets.set(sid, ws);
      this.wsConnections.push(sid);
      ws.on('close', () => {
        if (this.#sockets.get(sid) === ws) this.#sockets.delete(sid);
      });
      ws.on('error', () => {});
      this.#send(sid, 'status', { status: this.#queueInfo(), sid });
      // On reconnect, the client whose prompt runs is told the node that runs (no prompt id, as in server.py).
      const running = this.#running;
      if (running && running.extraData.client_id === sid && this.#lastNode !== undefined) this.#send(sid, 'executing', { node: this.#lastNode });
      this.changes.signal();
    });
  }

  /** ComfyUI's send_json: to one client id, or everyone. A client that queued a silent prompt hears nothing any more. */
  #send(sid: string | undefined, type: string, data: Record<string, unknown>): void {
    this.#deliver(sid, JSON.stringify({ type, data }));
  }

  #deliver(sid: string | undefined, payload: string | Buffer): void {
    const targets = sid === undefined ? [...this.#sockets.keys()] : [sid];
    for (const target of targets) {
      if (this.#silentClients.has(target)) continue;
      const ws = this.#sockets.get(target);
      if (ws?.readyState === ws?.OPEN) ws?.send(payload, { binary: typeof payload !== 'string' });
    }
  }

  #broadcastStatus(): void {
    this.#send(undefined, 'status', { status: this.#queueInfo() });
  }

  #queueInfo(): Record<string, unknown> {
    return { exec_info: { queue_remaining: this.#pending.length + (this.#running ? 1 : 0) } };
  }

  // ------------------------------------------------------------------ HTTP

  async #handle(req: IncomingMessage, res: ServerResponse): Promise<void> {
    const url = new URL(req.url ?? '/', this.url);
    // Current ComfyUI serves every route under /api too.
    const path = url.pathname.startsWith('/api/') ? url.pathname.slice(4) : url.pathname;
    this.requests.push(`${req.method} ${path}`);
    this.changes.signal();
    try {
      const route = `${req.method} ${path}`;
      if (route === 'GET /system_stats') return json(res, 200, this.#systemStats());
      if (route === 'GET /prompt') return json(res, 200, this.#queueInfo());
      if (route === 'POST /prompt') return await this.#postPrompt(req, res);
      if (route === 'GET /queue') return json(res, 200, this.#queue());
      if (route === 'POST /queue') return await this.#postQueue(req, res);
      if (route === 'POST /interrupt') return await this.#postInterrupt(req, res);
      if (route === 'POST /free') return await this.#postFree(req, res);
      if (route === 'GET /history') return json(res, 200, Object.fromEntries(this.#history));
      if (route === 'POST /history') return await this.#postHistory(req, res);
      if (req.method === 'GET' && path.startsWith('/history/')) {
        const id = decodeURIComponent(path.slice('/history/'.length));
        const entry = this.#history.get(id);
        return json(res, 200, entry === undefined ? {} : { [id]: entry });
      }
      if (route === 'GET /view') return await this.#view(url, res);
      res.writeHead(404).end();
    } catch (error) {
      res.writeHead(500, { 'content-type': 'text/plain' }).end(String(error));
    }
  }

  #systemStats(): Record<string, unknown> {
    return {
      system: {
        os: 'posix',
        ram_total: 67_108_864_000,
        ram_free: 50_000_000_000,
        comfyui_version: '0.3.99-fake',
        python_version: '3.12.3 (main) [GCC 13.2.0]',
        pytorch_version: '2.7.0+cu128',
        embedded_python: false,
        argv: ['main.py', '--listen', '127.0.0.1'],
      },
      devices: [
        {
          name: 'cuda:0 NVIDIA GeForce RTX 4090 : cudaMallocAsync',
          type: 'cuda',
          index: 0,
          vram_total: 25_757_220_864,
          vram_free: 24_000_000_000,
          torch_vram_total: 0,
          torch_vram_free: 0,
        },
      ],
    };
  }

  async #postPrompt(req: IncomingMessage, res: ServerResponse): Promise<void> {
    const body = (await readJson(req)) as Record<string, unknown>;
    if (typeof body !== 'object' || body === null || !('prompt' in body)) {
      return json(res, 400, { error: { type: 'no_prompt', message: 'No prompt provided', details: 'No prompt provided', extra_info: {} }, node_errors: {} });
    }
    const behaviour = { ...this.behaviour };
    const promptId = !behaviour.ignoreClientPromptId && body.prompt_id !== undefined ? String(body.prompt_id) : randomUUID();
    const workflow = body.prompt as Workflow;
    const clientId = typeof body.client_id === 'string' ? body.client_id : undefined;
    this.prompts.push({ promptId, clientId, workflow, body });
    this.changes.signal();
    const invalid = validate(workflow);
    if (invalid) return json(res, 400, invalid);
    const number = this.#number++;
    const extraData = { ...((body.extra_data as Record<string, unknown> | undefined) ?? {}), ...(clientId === undefined ? {} : { client_id: clientId }) };
    const outputNodes = Object.entries(workflow)
      .filter(([, node]) => OUTPUT_CLASSES.has(node.class_type))
      .map(([id]) => id);
    if (behaviour.silent && clientId !== undefined) this.#silentClients.add(clientId);
    this.#pending.push({ number, promptId, workflow, extraData, outputNodes, behaviour, stop: new AbortController(), interrupted: false });
    json(res, 200, { prompt_id: promptId, number, node_errors: {} });
    this.#broadcastStatus();
    this.#pump();
  }

  #queue(): Record<string, unknown> {
    const tuple = (item: QueueItem) => [item.number, item.promptId, item.workflow, item.extraData, item.outputNodes];
    return { queue_running: this.#running ? [tuple(this.#running)] : [], queue_pending: this.#pending.map(tuple) };
  }

  async #postQueue(req: IncomingMessage, res: ServerResponse): Promise<void> {
    const body = (await readJson(req)) as { clear?: boolean; delete?: string[] };
    if (body.clear) this.#pending.splice(0);
    if (Array.isArray(body.delete)) {
      this.queueDeletes.push(body.delete.map(String));
      for (const id of body.delete) {
        const index = this.#pending.findIndex((item) => item.promptId === id);
        if (index >= 0) this.#pending.splice(index, 1);
      }
    }
    res.writeHead(200).end();
    this.#broadcastStatus();
    this.changes.signal();
  }

  /** Current ComfyUI: with a prompt_id, only that prompt is stopped, and only if it is the running one. */
  async #postInterrupt(req: IncomingMessage, res: ServerResponse): Promise<void> {
    const body = (await readJson(req).catch(() => ({}))) as { prompt_id?: string };
    const running = this.#running;
    const wanted = body?.prompt_id;
    const stop = running !== undefined && (wanted === undefined || wanted === running.promptId) ? running : undefined;
    if (stop) {
      stop.interrupted = true;
      stop.stop.abort();
    }
    this.interrupts.push({ promptId: wanted, stopped: stop?.promptId });
    res.writeHead(200).end();
    this.changes.signal();
  }

  async #postFree(req: IncomingMessage, res: ServerResponse): Promise<void> {
    const body = await readJson(req);
    this.frees.push({ body, afterPrompts: this.prompts.length });
    res.writeHead(200).end();
    this.changes.signal();
  }

  async #postHistory(req: IncomingMessage, res: ServerResponse): Promise<void> {
    const body = (await readJson(req)) as { clear?: boolean; delete?: string[] };
    if (body.clear) this.#history.clear();
    if (Array.isArray(body.delete)) {
      this.historyDeletes.push(body.delete.map(String));
      for (const id of body.delete) this.#history.delete(String(id));
    }
    res.writeHead(200).end();
  }

  async #view(url: URL, res: ServerResponse): Promise<void> {
    const filename = url.searchParams.get('filename');
    if (!filename) return void res.writeHead(404).end();
    if (filename.startsWith('/') || filename.includes('..')) return void res.writeHead(400).end();
    const type = url.searchParams.get('type') ?? 'output';
    if (!['output', 'temp', 'input'].includes(type)) return void res.writeHead(400).end();
    const base = join(this.#outputRoot, type);
    const dir = normalize(join(base, url.searchParams.get('subfolder') ?? ''));
    if (dir !== base && !dir.startsWith(base + sep)) return void res.writeHead(403).end();
    try {
      const bytes = await readFile(join(dir, filename));
      const contentType = filename.endsWith('.webp') ? 'image/webp' : 'image/png';
      res.writeHead(200, { 'content-type': contentType, 'content-disposition': `filename="${filename}"` }).end(bytes);
    } catch {
      res.writeHead(404).end();
    }
  }

  // ------------------------------------------------------------------ executor (main.py prompt_worker)

  #pump(): void {
    if (this.#running || this.#down) return;
    const next = this.#pending.shift();
    if (!next) return;
    this.#running = next;
    void this.#execute(next).finally(() => {
      this.#running = undefined;
      this.#lastNode = undefined;
      if (this.#down) return;
      this.#broadcastStatus();
      this.changes.signal();
      this.#pump();
    });
  }

  async #execute(item: QueueItem): Promise<void> {
    const sid = item.extraData.client_id as string | undefined;
    const messages: Array<[string, Record<string, unknown>]> = [];
    // execution.py add_message: recorded for the history, sent to the prompt's client.
    const message = (event: string, data: Record<string, unknown>) => {
      const stamped = { ...data, timestamp: Date.now() };
      messages.push([event, stamped]);
      this.#send(sid, event, stamped);
    };
    const outputs: Record<string, Record<string, unknown>> = {};
    const executed: string[] = [];
    message('execution_start', { prompt_id: item.promptId });
    message('execution_cached', { nodes: [], prompt_id: item.promptId });
    let failure: 'error' | 'interrupted' | undefined;
    let failedNode: string | undefined;
    try {
      for (const nodeId of executionOrder(item.workflow)) {
        const node = item.workflow[nodeId];
        if (node === undefined) continue;
        failedNode = nodeId;
        if (item.stop.signal.aborted) throw new Interrupted();
        this.#lastNode = nodeId;
        this.#send(sid, 'executing', { node: nodeId, display_node: nodeId, prompt_id: item.promptId });
        this.changes.signal();
        if (SAMPLER_CLASSES.has(node.class_type)) await this.#sample(item, nodeId, sid);
        const output = await this.#runOutputNode(item, nodeId);
        if (output) {
          outputs[nodeId] = output;
          this.#send(sid, 'executed', { node: nodeId, display_node: nodeId, output, prompt_id: item.promptId });
        }
        executed.push(nodeId);
      }
    } catch (error) {
      if (this.#down || this.#forgotten.has(item.promptId)) return;
      const nodeType = failedNode === undefined ? undefined : item.workflow[failedNode]?.class_type;
      if (error instanceof Interrupted || item.interrupted) {
        failure = 'interrupted';
        message('execution_interrupted', { prompt_id: item.promptId, node_id: failedNode, node_type: nodeType, executed });
      } else {
        failure = 'error';
        const crash = error instanceof Crash ? error : new Crash(item.behaviour.crashException.type, String(error));
        message('execution_error', {
          prompt_id: item.promptId,
          node_id: failedNode,
          node_type: nodeType,
          executed,
          exception_message: crash.message,
          exception_type: crash.type,
          traceback: ['  File "execution.py", line 496, in execute\n', `${crash.type}: ${crash.message}\n`],
          current_inputs: {},
          current_outputs: {},
        });
      }
    }
    if (this.#down) return;
    if (failure === undefined) message('execution_success', { prompt_id: item.promptId });
    if (item.behaviour.historyDelayMs > 0) await sleep(item.behaviour.historyDelayMs);
    if (this.#down) return;
    // main.py: task_done files the history, then `executing` with node null says the prompt is over.
    this.#history.set(item.promptId, {
      prompt: [item.number, item.promptId, item.workflow, item.extraData, item.outputNodes],
      outputs: failure === undefined ? outputs : {},
      status: { status_str: failure === undefined ? 'success' : 'error', completed: failure === undefined, messages },
      meta: Object.fromEntries(Object.keys(outputs).map((id) => [id, { node_id: id, display_node: id, parent_node: null, real_node_id: id }])),
    });
    this.#send(sid, 'executing', { node: null, prompt_id: item.promptId });
    this.changes.signal();
  }

  async #sample(item: QueueItem, nodeId: string, sid: string | undefined): Promise<void> {
    const node = item.workflow[nodeId];
    const declared = Number(node?.inputs.steps);
    const steps = item.behaviour.steps ?? (Number.isInteger(declared) && declared > 0 ? declared : 4);
    for (let step = 1; step <= steps; step++) {
      await sleep(item.behaviour.stepMs, item.stop.signal).catch(() => {
        throw new Interrupted();
      });
      if (item.behaviour.crashAtStep === step) throw new Crash(item.behaviour.crashException.type, item.behaviour.crashException.message);
      this.#send(sid, 'progress', { value: step, max: steps, prompt_id: item.promptId, node: nodeId });
      // server.py encode_bytes + send_image: a big-endian event type (1 = PREVIEW_IMAGE), then the
      // image type (1 = JPEG, latent_preview.py's default format) and the image, after the step's progress.
      if (item.behaviour.previews) this.#deliver(sid, Buffer.concat([uint32(1), uint32(1), await previewJpeg(step, steps)]));
      this.changes.signal();
    }
  }

  /** SaveImage / PreviewImage / SaveAnimatedWEBP write real files the size of the workflow's latent. */
  async #runOutputNode(item: QueueItem, nodeId: string): Promise<Record<string, unknown> | undefined> {
    const node = item.workflow[nodeId];
    if (node === undefined || !OUTPUT_CLASSES.has(node.class_type)) return undefined;
    const { width, height, frames } = latentSize(item.workflow);
    const seed = Number(Object.values(item.workflow).find((n) => SAMPLER_CLASSES.has(n.class_type))?.inputs.seed ?? 0);
    const colour = { r: seed % 256, g: (seed >> 8) % 256, b: 128 };
    const counter = String(++this.#fileCounter).padStart(5, '0');
    let file: FileRef;
    let bytes: Buffer;
    if (node.class_type === 'SaveAnimatedWEBP') {
      const frame = Buffer.alloc(width * height * 3);
      const raw = Buffer.concat(
        Array.from({ length: frames }, (_, i) => {
          frame.fill(Buffer.from([colour.r, (colour.g + i * 40) % 256, colour.b]));
          return Buffer.from(frame);
        }),
      );
      bytes = await sharp(raw, { raw: { width, height: height * frames, channels: 3, pageHeight: height } })
        .webp({ loop: 0, delay: Array.from({ length: frames }, () => 100) })
        .toBuffer();
      file = { filename: `${prefixOf(node)}_${counter}_.webp`, subfolder: '', type: 'output' };
    } else {
      bytes = await sharp({ create: { width, height, channels: 3, background: colour } }).png().toBuffer();
      file =
        node.class_type === 'PreviewImage'
          ? { filename: `ComfyUI_temp_fake_${counter}_.png`, subfolder: '', type: 'temp' }
          : { filename: `${prefixOf(node)}_${counter}_.png`, subfolder: '', type: 'output' };
    }
    await writeFile(join(this.#outputRoot, file.type, file.filename), bytes);
    return node.class_type === 'SaveAnimatedWEBP' ? { images: [file], animated: [true] } : { images: [file] };
  }
}

class Interrupted extends Error {}

class Crash extends Error {
  readonly type: string;
  constructor(type: string, message: string) {
    super(message);
    this.type = type;
  }
}

/** execution.validate_prompt, loosely: shapes, known classes, BrokenNode always fails, output nodes present. */
function validate(workflow: unknown): Record<string, unknown> | undefined {
  const invalid = (message: string, details: string) => ({ error: { type: 'invalid_prompt', message, details, extra_info: {} }, node_errors: {} });
  if (typeof workflow !== 'object' || workflow === null || Array.isArray(workflow)) return invalid('Prompt is not an object', '');
  const nodes = workflow as Record<string, { class_type?: unknown; inputs?: unknown }>;
  for (const [id, node] of Object.entries(nodes)) {
    if (typeof node?.class_type !== 'string') return invalid('Cannot execute because a node is missing the class_type property.', `Node ID '#${id}'`);
    if (!KNOWN_CLASSES.has(node.class_type)) return invalid(`Cannot execute because node ${node.class_type} does not exist.`, `Node ID '#${id}'`);
    if (typeof node.inputs !== 'object' || node.inputs === null) return invalid('Cannot execute because a node is missing the inputs property.', `Node ID '#${id}'`);
  }
  const outputs = Object.entries(nodes).filter(([, node]) => OUTPUT_CLASSES.has(node.class_type as string));
  if (outputs.length === 0) return { error: { type: 'prompt_no_outputs', message: 'Prompt has no outputs', details: '', extra_info: {} }, node_errors: [] };
  const nodeErrors: Record<string, unknown> = {};
  for (const [id, node] of Object.entries(nodes)) {
    const inputs = node.inputs as Record<string, unknown>;
    const errors: Array<Record<string, unknown>> = [];
    if (node.class_type === 'BrokenNode') {
      errors.push({ type: 'value_not_in_list', message: 'Value not in list', details: `ckpt_name: '${String(inputs.ckpt_name ?? 'missing.safetensors')}' not in []`, extra_info: { input_name: 'ckpt_name' } });
    }
    for (const name of intInputs(node.class_type as string)) {
      if (name in inputs && !Array.isArray(inputs[name]) && !Number.isFinite(Number(inputs[name]))) {
        errors.push({ type: 'invalid_input_type', message: 'Failed to convert an input value to a INT value', details: `${name}, ${String(inputs[name])}`, extra_info: { input_name: name } });
      }
    }
    if (errors.length > 0) nodeErrors[id] = { errors, dependent_outputs: outputs.map(([outId]) => outId), class_type: node.class_type };
  }
  if (Object.keys(nodeErrors).length > 0) {
    return { error: { type: 'prompt_outputs_failed_validation', message: 'Prompt outputs failed validation', details: '', extra_info: {} }, node_errors: nodeErrors };
  }
  return undefined;
}

function intInputs(classType: string): string[] {
  if (classType === 'EmptyLatentImage') return ['width', 'height', 'batch_size'];
  if (SAMPLER_CLASSES.has(classType)) return ['seed', 'steps'];
  return [];
}

/** Dependencies first (inputs that are `[node_id, slot]` links), otherwise in id order. */
function executionOrder(workflow: Workflow): string[] {
  const order: string[] = [];
  const seen = new Set<string>();
  const visit = (id: string) => {
    if (seen.has(id) || workflow[id] === undefined) return;
    seen.add(id);
    for (const value of Object.values(workflow[id].inputs)) if (Array.isArray(value) && typeof value[0] === 'string') visit(value[0]);
    order.push(id);
  };
  for (const id of Object.keys(workflow)) visit(id);
  return order;
}

function latentSize(workflow: Workflow): { width: number; height: number; frames: number } {
  const latent = Object.values(workflow).find((node) => node.class_type === 'EmptyLatentImage');
  const size = (value: unknown) => {
    const n = Number(value);
    return Number.isInteger(n) && n >= 1 && n <= 4096 ? n : 64;
  };
  const batch = Number(latent?.inputs.batch_size);
  return { width: size(latent?.inputs.width), height: size(latent?.inputs.height), frames: Number.isInteger(batch) && batch > 0 ? Math.min(batch, 64) : 1 };
}

function prefixOf(node: { inputs: Record<string, unknown> }): string {
  const prefix = node.inputs.filename_prefix;
  return typeof prefix === 'string' && /^[\w-]+$/.test(prefix) ? prefix : 'ComfyUI';
}

function json(res: ServerResponse, status: number, body: unknown): void {
  res.writeHead(status, { 'content-type': 'application/json' }).end(JSON.stringify(body));
}

async function readJson(req: IncomingMessage): Promise<unknown> {
  const chunks: Buffer[] = [];
  for await (const chunk of req) chunks.push(chunk as Buffer);
  const text = Buffer.concat(chunks).toString('utf8');
  return text === '' ? {} : JSON.parse(text);
}

function uint32(value: number): Buffer {
  const buffer = Buffer.alloc(4);
  buffer.writeUInt32BE(value);
  return buffer;
}

function sleep(ms: number, signal?: AbortSignal): Promise<void> {
  return new Promise((resolve, reject) => {
    if (signal?.aborted) return reject(signal.reason);
    const timer = setTimeout(() => {
      signal?.removeEventListener('abort', onAbort);
      resolve();
    }, ms);
    const onAbort = () => {
      clearTimeout(timer);
      reject(signal?.reason);
    };
    signal?.addEventListener('abort', onAbort, { once: true });
  });
}

/** A latent preview: a small JPEG that brightens as the steps go by, so a test can see it change. */
function previewJpeg(step: number, steps: number): Promise<Buffer> {
  const level = Math.round((255 * step) / steps);
  return sharp({ create: { width: 64, height: 64, channels: 3, background: { r: level, g: 64, b: 255 - level } } })
    .jpeg({ quality: 80 })
    .toBuffer();
}

/** A txt2img API-format workflow with the engine's placeholders, as the tests and the e2e chain use it. */
export const TXT2IMG: Workflow = {
  '3': {
    class_type: 'KSampler',
    inputs: {
      seed: '{{seed}}',
      steps: '{{steps}}',
      cfg: '{{cfg}}',
      sampler_name: '{{sampler}}',
      scheduler: 'normal',
      denoise: 1,
      model: ['4', 0],
      positive: ['6', 0],
      negative: ['7', 0],
      latent_image: ['5', 0],
    },
  },
  '4': { class_type: 'CheckpointLoaderSimple', inputs: { ckpt_name: 'sd_xl_base_1.0.safetensors' } },
  '5': { class_type: 'EmptyLatentImage', inputs: { width: '{{width}}', height: '{{height}}', batch_size: 1 } },
  '6': { class_type: 'CLIPTextEncode', inputs: { text: '{{prompt}}, highly detailed', clip: ['4', 1] } },
  '7': { class_type: 'CLIPTextEncode', inputs: { text: '{{negative_prompt}}', clip: ['4', 1] } },
  '8': { class_type: 'VAEDecode', inputs: { samples: ['3', 0], vae: ['4', 2] } },
  '9': { class_type: 'SaveImage', inputs: { filename_prefix: 'studio', images: ['8', 0] } },
};
