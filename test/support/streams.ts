import type { Duplex } from 'node:stream';

/**
 * Write `payload` to `socket` in chunks of varying size (1 byte to 64 KiB, waiting for 'drain'),
 * end it, and resolve with every byte read back until the socket closes: with an echo server
 * behind a proxy, the bytes must come back in order, none lost or replaced. Varying sizes make
 * reads that are sometimes one record and sometimes many. `stallMs`: the reader starts only after
 * that long, so every hop's writes queue behind backpressure first (chunks a proxy must keep).
 */
export function echoRoundTrip(socket: Duplex, payload: Buffer, stallMs = 0): Promise<Buffer> {
  const chunks: Buffer[] = [];
  socket.on('data', (d: Buffer) => chunks.push(d));
  if (stallMs > 0) {
    socket.pause();
    setTimeout(() => socket.resume(), stallMs);
  }
  const closed = new Promise<Buffer>((resolve, reject) => {
    socket.on('error', reject);
    socket.on('close', () => resolve(Buffer.concat(chunks)));
  });
  const send = async (): Promise<void> => {
    for (let p = 0, i = 0; p < payload.length; i++) {
      const n = Math.min(1 + ((i * 7919) % 65_536), payload.length - p);
      const ok = socket.write(payload.subarray(p, p + n));
      p += n;
      if (!ok) await new Promise((r) => socket.once('drain', r));
    }
    socket.end();
  };
  void send();
  return closed;
}
