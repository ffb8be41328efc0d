import { tmpdir } from 'node:os';
import { createServer, type IncomingHttpHeaders, type Server } from 'node:http';
import type { AddressInfo } from 'node:net';
import { createLogRoot, silentLogger, type Logger } from '@studio-worker/log';
import { ModelSource, Task, type ModelSourceInput, type TaskInput } from '@studio-worker/protocol';
import { EngineFailure, type EngineContext, type EngineJob, type EngineProgress } from '../../../src/engines/engine.ts';
import { Changes } from '../../helpers/wait.ts';

/**
 * Shared by the A1111 and OpenAI engine tests: jobs, a context that records progress, a logger that
 * keeps its lines, and a tiny loopback file server for input images.
 */

export function imageJob(task: Omit<Extract<TaskInput, { kind: 'image' }>, 'kind'>, source: Partial<ModelSourceInput> & { engine: string }, model = 'test-model'): EngineJob {
  return { jobId: 'job-1', attempt: 1, model, task: Task.parse({ kind: 'image', ...task }), source: ModelSource.parse(source), files: [] };
}

export interface RecordingContext {
  ctx: EngineContext;
  updates: EngineProgress[];
  changes: Changes;
  controller: AbortController;
}

export function recordingContext(log: Logger = silentLogger): RecordingContext {
  const updates: EngineProgress[] = [];
  const changes = new Changes();
  const controller = new AbortController();
  const ctx: EngineContext = {
    signal: controller.signal,
    log,
    workDir: tmpdir(),
    progress(update) {
      updates.push(update);
      changes.signal();
    },
  };
  return { ctx, updates, changes, controller };
}

/** A debug-level logger whose JSON lines are kept in memory. */
export function capturedLogger(): { log: Logger; lines: string[] } {
  const lines: string[] = [];
  const root = createLogRoot({ app: 'test', spec: 'debug', destination: { write: (line: string) => void lines.push(line) } });
  return { log: root.child('engine'), lines };
}

/** Awaits a promise that must reject with an EngineFailure, and returns it. */
export async function failureOf(promise: Promise<unknown>): Promise<EngineFailure> {
  try {
    await promise;
  } catch (error) {
    if (error instanceof EngineFailure) return error;
    throw new Error(`expected an EngineFailure, got ${String(error)}`, { cause: error });
  }
  throw new Error('expected the promise to reject, but it resolved');
}

/** Serves fixed bytes per path on 127.0.0.1 (404 elsewhere). */
export class FileServer {
  readonly #server: Server;
  readonly files = new Map<string, { status?: number; type?: string; body: Uint8Array }>();
  readonly requests: Array<{ path: string; headers: IncomingHttpHeaders }> = [];
  url = '';

  constructor() {
    this.#server = createServer((req, res) => {
      this.requests.push({ path: new URL(req.url ?? '/', 'http://x').pathname, headers: req.headers });
      const file = this.files.get(new URL(req.url ?? '/', 'http://x').pathname);
      if (file === undefined) {
        res.writeHead(404).end('not found');
        return;
      }
      res.writeHead(file.status ?? 200, { 'content-type': file.type ?? 'application/octet-stream' }).end(file.body);
    });
  }

  static async start(): Promise<FileServer> {
    const server = new FileServer();
    await new Promise<void>((resolve) => server.#server.listen(0, '127.0.0.1', resolve));
    server.url = `http://127.0.0.1:${(server.#server.address() as AddressInfo).port}`;
    return server;
  }

  close(): Promise<void> {
    this.#server.closeAllConnections();
    return new Promise((resolve) => this.#server.close(() => resolve()));
  }
}
