import { WebSocketServer, type WebSocket } from 'ws';
import type { Access } from '../core/index.ts';
import { FeedHub } from '../app/feed.ts';
import { DASHBOARD_PROTOCOL } from '../app/sockets.ts';
import type { AppContext } from '../app/host.ts';
import { completeUpgrade } from './upgrade.ts';

/**
 * The dashboards' live feed on the embedded host: the `sockets.acceptFeed` port (the app admitted
 * the token; app/sockets.ts) completes the upgrade with `ws` and hands the socket to the shared
 * FeedHub (app/feed.ts), which coalesces events and re-checks the token before each batch.
 */
export class RealtimeFeed {
  private readonly wss = new WebSocketServer({
    noServer: true,
    perMessageDeflate: false,
    // Dashboards only listen; a frame from one is never more than a close.
    maxPayload: 64 * 1024,
    handleProtocols: () => DASHBOARD_PROTOCOL,
  });
  /** The core's event sink. */
  readonly hub: FeedHub;
  private readonly sockets = new Set<WebSocket>();

  constructor(access: () => Access) {
    this.hub = new FeedHub(access, (socket) => (socket as WebSocket).terminate());
  }

  /** The `sockets.acceptFeed` port. */
  acceptFeed(c: AppContext, token: string): Response {
    return completeUpgrade(c, this.wss, (ws) => {
      this.sockets.add(ws);
      const gone = () => {
        this.sockets.delete(ws);
        this.hub.remove(ws);
      };
      ws.on('close', gone);
      ws.on('error', gone);
      this.hub.add(ws, token);
    });
  }

  close(): void {
    this.hub.close();
    for (const ws of this.sockets) ws.terminate();
    this.wss.close();
  }
}
