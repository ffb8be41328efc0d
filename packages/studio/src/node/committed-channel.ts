import type { WorkerChannel } from '../core/index.ts';
import type { NodeSql } from './sqlite.ts';

/** A channel that can hold back its socket writes while `fn` sends, then write each socket's frames at once. */
export interface CorkingChannel extends WorkerChannel {
  corked?(fn: () => void): void;
}

type Held = { connId: string; text: string } | { connId: string; code: number; reason: string };

/**
 * Frames (and closes) to workers wait until the database has committed the changes they announce:
 * a worker is never offered a claim, or told its result was stored, before that is durable. Order
 * per connection is kept (an error frame still arrives before its close).
 */
export class CommittedChannel implements WorkerChannel {
  private readonly inner: CorkingChannel;
  private readonly sql: NodeSql;
  private held: Held[] = [];

  constructor(inner: CorkingChannel, sql: NodeSql) {
    this.inner = inner;
    this.sql = sql;
    sql.onCommit(() => this.flush());
  }

  send(connId: string, text: string): void {
    if (this.sql.pending) this.held.push({ connId, text });
    else this.inner.send(connId, text);
  }

  close(connId: string, code: number, reason: string): void {
    if (this.sql.pending) this.held.push({ connId, code, reason });
    else this.inner.close(connId, code, reason);
  }

  /** After a failed commit: nothing of that turn may reach a worker. */
  discard(): number {
    const n = this.held.length;
    this.held = [];
    return n;
  }

  private flush(): void {
    const held = this.held;
    if (held.length === 0) return;
    this.held = [];
    const send = () => {
      for (const item of held) {
        if ('text' in item) this.inner.send(item.connId, item.text);
        else this.inner.close(item.connId, item.code, item.reason);
      }
    };
    // One commit usually releases several frames per worker (a completeAck and the next offer):
    // corked, they leave in one write per socket instead of one per frame.
    if (this.inner.corked) this.inner.corked(send);
    else send();
  }
}
