import { createServer as createHttpServer, type Server as HttpServer } from 'node:http';
import { createServer, type Server, type Socket } from 'node:net';

// The embedded demo's backends: three local servers that answer HTTP (a small JSON echo of the
// request, naming the server) and echo raw bytes back for anything that is not HTTP, so the
// same three serve both the demo's HTTP and TCP frontends.

const HTTP_REQUEST_LINE = /^[A-Z]+ \S+ HTTP\/1\.[01]\r?\n/;

export interface DemoBackends {
  readonly ports: readonly number[];
  close(): Promise<void>;
}

function echoServer(name: string): { server: Server; http: HttpServer; sockets: Set<Socket> } {
  const http = createHttpServer((req, res) => {
    if (req.url === '/health') {
      res.setHeader('content-type', 'application/json');
      res.end('{"status":"ok"}');
      return;
    }
    const chunks: Buffer[] = [];
    req.on('data', (c: Buffer) => chunks.push(c));
    req.on('end', () => {
      res.setHeader('content-type', 'application/json');
      res.end(`${JSON.stringify({ server: name, method: req.method, url: req.url, headers: req.headers, body: Buffer.concat(chunks).toString() }, null, 2)}\n`);
    });
  });
  const sockets = new Set<Socket>();
  const server = createServer({ allowHalfOpen: true }, (socket: Socket) => {
    sockets.add(socket);
    socket.on('close', () => sockets.delete(socket));
    socket.once('data', (first: Buffer) => {
      if (HTTP_REQUEST_LINE.test(first.subarray(0, 256).toString('latin1'))) {
        socket.pause();
        socket.unshift(first);
        http.emit('connection', socket);
        socket.resume();
      } else {
        socket.write(first);
        socket.pipe(socket);
      }
    });
    socket.on('error', () => socket.destroy());
  });
  // Closing the demo ends its keep-alive connections too (health checks keep some open).
  server.on('close', () => {
    for (const s of sockets) s.destroy();
  });
  return { server, http, sockets };
}

export async function startDemoBackends(ports: readonly number[], host = '127.0.0.1'): Promise<DemoBackends> {
  const started: Server[] = [];
  const open: Set<Socket>[] = [];
  for (let i = 0; i < ports.length; i++) {
    const { server, sockets } = echoServer(`echo${i + 1}`);
    open.push(sockets);
    await new Promise<void>((resolve, reject) => {
      server.once('error', reject);
      server.listen(ports[i], host, () => resolve());
    });
    started.push(server);
  }
  return {
    ports: started.map((s) => (s.address() as { port: number }).port),
    close: async () => {
      for (const set of open) for (const s of set) s.destroy();
      await Promise.all(started.map((s) => new Promise<void>((r) => s.close(() => r()))));
    },
  };
}
