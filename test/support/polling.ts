import { connect } from 'node:net';

// Small waiting and probing helpers shared by the process-level tests (workers, access log,
// MCP stand-ins): poll until a condition holds (never a fixed sleep), and one TCP exchange.

/**
 * Polls `fn` every 50 ms until it returns something other than undefined (throws count as not yet).
 * The default deadline is a minute: these are waits (process start, workers forking, Consul checks),
 * and on a loaded 2-core machine 15 s was missed ("timed out waiting for 2 workers"). A condition
 * that never holds still fails, only later.
 */
export async function waitFor<T>(what: string, fn: () => Promise<T | undefined> | T | undefined, ms = 60_000): Promise<T> {
  const until = Date.now() + ms;
  for (;;) {
    try {
      const v = await fn();
      if (v !== undefined) return v;
    } catch {
      /* not yet */
    }
    if (Date.now() > until) throw new Error(`timed out waiting for ${what}`);
    await new Promise((r) => setTimeout(r, 50));
  }
}

/**
 * Sends `data`, half-closes, and resolves with everything received until the peer closes.
 * `resetIsAnswer`: a reset resolves with what came before it (a connection the balancer could
 * not forward is reset, and that is an answer too) instead of rejecting.
 */
export function tcpExchange(port: number, data: string, resetIsAnswer = false): Promise<string> {
  return new Promise((resolve, reject) => {
    const s = connect({ port, host: '127.0.0.1', allowHalfOpen: true });
    let out = '';
    s.on('data', (d) => {
      out += d.toString();
    });
    s.on('end', () => s.end());
    s.on('close', () => resolve(out));
    s.on('error', (e: NodeJS.ErrnoException) => (resetIsAnswer && e.code === 'ECONNRESET' ? resolve(out) : reject(e)));
    s.end(data);
  });
}
