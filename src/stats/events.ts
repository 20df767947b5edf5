import type { IncomingMessage, ServerResponse } from 'node:http';
import { modelEvents, type ServerStateEvent } from '../model/events.js';

// `/api/events`: server-sent events feeding the live page. One `stats` event (the /api/stats
// JSON) every interval, built once and written to every client; a `transition` event the
// moment a server changes state, followed shortly by a fresh `stats` event, so a server going
// DOWN shows within ~100 ms rather than at the next tick. No timer runs without a client.

const MAX_CLIENTS = 100;

export class EventStream {
  private readonly clients = new Set<ServerResponse>();
  private timer: NodeJS.Timeout | null = null;
  private pending: NodeJS.Timeout | null = null;
  private started = false;

  constructor(
    private readonly snapshot: () => string,
    private readonly intervalMs: number,
  ) {}

  start(): void {
    if (this.started) return;
    this.started = true;
    modelEvents.on('server-state', this.onServerState);
  }

  stop(): void {
    this.started = false;
    modelEvents.off('server-state', this.onServerState);
    this.stopTimer();
    if (this.pending !== null) clearTimeout(this.pending);
    this.pending = null;
    for (const res of this.clients) res.end();
    this.clients.clear();
  }

  get size(): number {
    return this.clients.size;
  }

  add(req: IncomingMessage, res: ServerResponse): void {
    if (this.clients.size >= MAX_CLIENTS) {
      res.writeHead(503, { 'content-type': 'application/json', 'retry-after': '5' });
      res.end('{"error":"too many event streams"}\n');
      return;
    }
    res.writeHead(200, {
      'content-type': 'text/event-stream; charset=utf-8',
      'cache-control': 'no-store',
      'x-content-type-options': 'nosniff',
      connection: 'keep-alive',
    });
    res.write(`retry: 2000\n\nevent: stats\ndata: ${this.snapshot()}\n\n`);
    this.clients.add(res);
    req.socket.setNoDelay(true);
    const drop = (): void => {
      this.clients.delete(res);
      if (this.clients.size === 0) this.stopTimer();
    };
    res.on('close', drop);
    if (this.timer === null) {
      this.timer = setInterval(() => this.broadcastStats(), this.intervalMs);
      this.timer.unref();
    }
  }

  /** Push a `stats` event within ~100 ms (coalesced). */
  soon(): void {
    if (this.pending !== null || this.clients.size === 0) return;
    this.pending = setTimeout(() => {
      this.pending = null;
      this.broadcastStats();
    }, 100);
    this.pending.unref();
  }

  private stopTimer(): void {
    if (this.timer !== null) clearInterval(this.timer);
    this.timer = null;
  }

  private broadcastStats(): void {
    if (this.clients.size === 0) return;
    this.broadcast('stats', this.snapshot());
  }

  private broadcast(event: string, data: string): void {
    const frame = `event: ${event}\ndata: ${data}\n\n`;
    for (const res of this.clients) {
      // A client that does not read (full buffer) is dropped rather than buffered without bound.
      if (res.writableLength > 4 * 1024 * 1024) res.destroy();
      else res.write(frame);
    }
  }

  private readonly onServerState = (e: ServerStateEvent): void => {
    if (this.clients.size === 0) return;
    this.broadcast(
      'transition',
      JSON.stringify({ t: Date.now(), backend: e.server.backendName, server: e.server.name, from: e.from, to: e.to, reason: e.reason }),
    );
    this.soon();
  };
}
