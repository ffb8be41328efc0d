/**
 * The JavaScript memory of a child process after a full garbage collection, read through the V8
 * inspector (the child runs with `--inspect=127.0.0.1:0`; `INSPECT_NODE_OPTIONS` adds that to a
 * child's environment). What a leak grows: objects still reachable after a GC, and the Buffers
 * they hold. RSS is not that: it also holds heap and malloc pages a burst of large frames grew and
 * nothing has handed back yet, tens of MiB that come and go with the collector's timing.
 */
import WebSocket from 'ws';

/** Debugger URL as node prints it on stderr when the inspector starts. */
export const INSPECTOR_LINE = /Debugger listening on (ws:\/\/127\.0\.0\.1:\d+\/[0-9a-f-]+)/;

/** NODE_OPTIONS for a child to measure: the caller's own options, and an inspector on a free loopback port. */
export function inspectNodeOptions(): string {
  return [process.env.NODE_OPTIONS, '--inspect=127.0.0.1:0'].filter(Boolean).join(' ');
}

export interface HeapAfterGc {
  /** V8 heap in use, MiB. */
  heapUsedMiB: number;
  /** Memory of Buffers and other objects outside the heap that live objects hold, MiB. */
  externalMiB: number;
}

/** Collect garbage in the inspected process (twice: weak references freed by the first go in the second), then read its memory. */
export async function heapAfterGc(debuggerUrl: string): Promise<HeapAfterGc> {
  const ws = new WebSocket(debuggerUrl);
  await new Promise<void>((resolve, reject) => {
    ws.once('open', () => resolve());
    ws.once('error', reject);
  });
  let nextId = 1;
  const call = (method: string, params: object = {}): Promise<{ result?: { result?: { value?: unknown } }; error?: { message: string } }> =>
    new Promise((resolve) => {
      const id = nextId++;
      const onMessage = (data: WebSocket.RawData) => {
        const reply = JSON.parse(data.toString()) as { id?: number };
        if (reply.id !== id) return;
        ws.off('message', onMessage);
        resolve(reply as never);
      };
      ws.on('message', onMessage);
      ws.send(JSON.stringify({ id, method, params }));
    });
  try {
    for (let i = 0; i < 2; i++) {
      const gc = await call('HeapProfiler.collectGarbage');
      if (gc.error) throw new Error(`HeapProfiler.collectGarbage: ${gc.error.message}`);
    }
    const reply = await call('Runtime.evaluate', { expression: 'JSON.stringify(process.memoryUsage())', returnByValue: true });
    const text = reply.result?.result?.value;
    if (typeof text !== 'string') throw new Error(`Runtime.evaluate gave no memory figures: ${JSON.stringify(reply)}`);
    const usage = JSON.parse(text) as { heapUsed: number; external: number };
    return { heapUsedMiB: usage.heapUsed / 2 ** 20, externalMiB: usage.external / 2 ** 20 };
  } finally {
    ws.close();
  }
}
