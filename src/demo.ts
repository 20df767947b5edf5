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

function echoServer(name: string): { server: Server; http: HttpServer } {
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
  const server = createServer({ allowHalfOpen: true }, (socket: Socket) => {
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
  return { server, http };
}

export async function startDemoBackends(ports: readonly number[], host = '127.0.0.1'): Promise<DemoBackends> {
  const started: Server[] = [];
  for (let i = 0; i < ports.length; i++) {
    const { server } = echoServer(`echo${i + 1}`);
    await new Promise<void>((resolve, reject) => {
      server.once('error', reject);
      server.listen(ports[i], host, () => resolve());
    });
    started.push(server);
  }
  return {
    ports: started.map((s) => (s.address() as { port: number }).port),
    close: async () => {
      await Promise.all(started.map((s) => new Promise<void>((r) => s.close(() => r()))));
    },
  };
}
