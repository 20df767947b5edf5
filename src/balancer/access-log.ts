import type { Logger } from '../log.js';

// Access log: one structured line per HTTP request or TCP connection, off by default.
// `sample` (0..1] logs that share of lines; errors are always logged.

export interface HttpAccessEntry {
  frontend: string;
  backend: string | null;
  server: string | null;
  client: string;
  method: string;
  target: string;
  status: number;
  bytesIn: number;
  bytesOut: number;
  connectMs: number;
  totalMs: number;
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
  totalMs: number;
  error: string;
}

export class AccessLog {
  constructor(
    private readonly logger: Logger,
    private readonly sample: number,
  ) {}

  private keep(error: string): boolean {
    return error !== '' || this.sample >= 1 || Math.random() < this.sample;
  }

  http(e: HttpAccessEntry): void {
    if (this.keep(e.error)) this.logger.info({ access: 'http', ...e }, 'request');
  }

  tcp(e: TcpAccessEntry): void {
    if (this.keep(e.error)) this.logger.info({ access: 'tcp', ...e }, 'connection');
  }
}
