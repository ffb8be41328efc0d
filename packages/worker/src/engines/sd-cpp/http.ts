import { http } from '../../platform/node-http.ts';

export interface HttpAnswer {
  status: number;
  body: Buffer;
}

const MAX_BODY = 512 * 1024 * 1024;

/**
 * One HTTP exchange with a loopback server, without fetch's 5-minute header timeout (a slow
 * generation answers only when it is done). `signal` aborts it; `timeoutMs` bounds short calls.
 */
export function httpExchange(url: string, options: { method: 'GET' | 'POST'; json?: unknown; signal?: AbortSignal; timeoutMs?: number }): Promise<HttpAnswer> {
  return new Promise((resolve, reject) => {
    const payload = options.json === undefined ? undefined : Buffer.from(JSON.stringify(options.json));
    const headers: Record<string, string | number> = { accept: 'application/json' };
    if (payload !== undefined) {
      headers['content-type'] = 'application/json';
      headers['content-length'] = payload.length;
    }
    const req = http.request(url, { method: options.method, headers, signal: options.signal, agent: false }, (res) => {
      const chunks: Buffer[] = [];
      let size = 0;
      res.on('data', (chunk: Buffer) => {
        size += chunk.length;
        if (size > MAX_BODY) {
          req.destroy(new Error(`answer larger than ${MAX_BODY} bytes`));
          return;
        }
        chunks.push(chunk);
      });
      res.on('end', () => resolve({ status: res.statusCode ?? 0, body: Buffer.concat(chunks) }));
      res.on('error', reject);
    });
    if (options.timeoutMs !== undefined) {
      req.setTimeout(options.timeoutMs, () => req.destroy(new Error(`no answer within ${options.timeoutMs} ms`)));
    }
    req.on('error', reject);
    req.end(payload);
  });
}

