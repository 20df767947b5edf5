import type { Logger } from '../log.js';

// Access log: one structured (JSON, pino) line per HTTP request or TCP connection, written when
// it ends; off by default (`logging.access`). `sample` (0..1] keeps that share of the lines,
// chosen at random per request; failures (a local 502/503/504, a reset, a timeout, a 5xx from
// the server) are always kept, since they are the lines one reads a log for.
//
// The lines have their own level: enabling access logs prints them whatever `logging.level`
// says (HAProxy's `log` lines are not gated by the daemon's own verbosity either). Fields are
// documented in docs/access-log.md; `pid` (from the root logger) tells workers apart.

export interface HttpAccessEntry {
  frontend: string;
  backend: string | null;
  server: string | null;
  client: string;
  method: string;
  target: string;
  /** Status sent to the client; 0 when none was (the client left first). */
  status: number;
  bytesIn: number;
  bytesOut: number;
  /** ms from the request to the server connection being ready; -1 when none was made. */
  connectMs: number;
  /** ms from the request's first byte to the end of the exchange. */
  totalMs: number;
  /** Why the exchange failed; '' when it completed. */
  error: string;
}

export interface TcpAccessEntry {
  frontend: string;
  backend: string | null;
  server: string | null;
  client: string;
  bytesIn: number;
  bytesOut: number;
  connectMs: number;
  /** ms from accept to close. */
  totalMs: number;
  error: string;
}

export class AccessLog {
  private readonly httpLog: Logger;
  private readonly tcpLog: Logger;

  constructor(
    logger: Logger,
    readonly sample: number,
  ) {
    // Bindings set once here, so a line costs no object spread: pino writes them pre-serialised.
    this.httpLog = logger.child({ access: 'http' }, { level: 'info' });
    this.tcpLog = logger.child({ access: 'tcp' }, { level: 'info' });
  }

  /** Will a line with this outcome be written? Failures always; completed exchanges by `sample`. */
  private keeps(error: string, status: number): boolean {
    return error !== '' || status >= 500 || this.sample >= 1 || Math.random() < this.sample;
  }

  /** Log an HTTP exchange (sampled here). */
  http(e: HttpAccessEntry): void {
    if (this.keeps(e.error, e.status)) this.httpLog.info(e, 'request');
  }

  tcp(e: TcpAccessEntry): void {
    if (this.keeps(e.error, 0)) this.tcpLog.info(e, 'connection');
  }
}
