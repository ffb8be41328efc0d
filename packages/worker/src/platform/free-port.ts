import { createServer } from 'node:net';

/**
 * A port nothing listens on right now on `host` (the OS picks it), for an engine server started a
 * moment later. Nothing can reserve it in between: a caller whose server then fails to bind chooses
 * again (engines/sd-cpp/resident.ts does).
 */
export function freePort(host = '127.0.0.1'): Promise<number> {
  return new Promise((resolve, reject) => {
    const server = createServer();
    server.unref();
    server.once('error', reject);
    server.listen(0, host, () => {
      const address = server.address();
      const port = typeof address === 'object' && address !== null ? address.port : 0;
      server.close(() => (port > 0 ? resolve(port) : reject(new Error('could not pick a free port'))));
    });
  });
}
