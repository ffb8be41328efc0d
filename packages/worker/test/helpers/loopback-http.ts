import { createServer, type IncomingMessage, type RequestListener, type Server } from 'node:http';
import type { AddressInfo, Socket } from 'node:net';

/**
 * A real HTTP server for fakes, on 127.0.0.1 and a free port. `close()` also cuts the connections
 * clients keep alive, which would otherwise hold it open until they time out.
 */
export class LoopbackHttp {
  readonly server: Server;
  readonly #sockets = new Set<Socket>();
  #url = '';

  constructor(handler: RequestListener) {
    this.server = createServer(handler);
    this.server.on('connection', (socket) => {
      this.#sockets.add(socket);
      socket.on('close', () => this.#sockets.delete(socket));
    });
  }

  /** Listen; answers the origin (`http://127.0.0.1:<port>`). */
  async listen(): Promise<string> {
    await new Promise<void>((resolve) => this.server.listen(0, '127.0.0.1', resolve));
    this.#url = `http://127.0.0.1:${(this.server.address() as AddressInfo).port}`;
    return this.#url;
  }

  /** `http://127.0.0.1:<port>` once listening. */
  get url(): string {
    return this.#url;
  }

  /** Cut every open connection, mid-body included (what a dropped network looks like to a client). */
  dropConnections(): void {
    for (const socket of this.#sockets) socket.destroy();
  }

  async close(): Promise<void> {
    const closed = new Promise<void>((resolve) => this.server.close(() => resolve()));
    this.dropConnections();
    await closed;
  }
}

/** A request's whole body as UTF-8 text. */
export function readBody(req: IncomingMessage): Promise<string> {
  return new Promise((resolve, reject) => {
    const chunks: Buffer[] = [];
    req.on('data', (chunk: Buffer) => chunks.push(chunk));
    req.on('end', () => resolve(Buffer.concat(chunks).toString('utf8')));
    req.on('error', reject);
  });
}
