// Fuzzing, bounded in time and count, with a seeded PRNG (FUZZ_SEED=n to replay a run; the
// seed is printed). Two levels:
// - parser: HttpHead.parseRequest and ChunkedScanner on random and mutated input: never
//   throw, never accept a head with both Content-Length and chunked, offsets stay inside the
//   given range, bytes outside [start, end) change nothing, a split never changes a result;
//   and, differentially, every head the parser accepts (with obs-fold rejected, and unfolded)
//   is accepted by an independent strict parser (test/support/hostile.ts) with the same
//   method, target, Host and framing, and the chunked scanner agrees with it on every body;
// - network: the same inputs over raw sockets to a proxy in front of a strict raw backend:
//   every answer is a well-formed HTTP/1.1 response (or a close), error answers close the
//   connection, the backend only ever receives well-formed requests that went through the
//   proxy's parser, and (differentially again) what the backend got from each case is a
//   prefix of what the strict parser reads in that case's bytes: same requests, same bodies,
//   never one more. Each case connects from its own 127.x.y.z address, which the proxy names
//   in its Forwarded line, so every request at the backend is traced to the bytes it came from.
import t from 'tap';
import { HttpHead, PARSE_INCOMPLETE, PARSE_OK } from '../src/balancer/http-head.js';
import type { HttpLimits } from '../src/config/types.js';
import { ChunkedScanner, CHUNKED_ERROR } from '../src/balancer/chunked.js';
import { backendConfig, config, frontendConfig, start } from './support/proxy-harness.js';
import { exchange, parseResponses, prng, strictBackend, strictParseAll, strictParseHead, strictParseRequest, type BackendRequest } from './support/hostile.js';

const SEED = Number(process.env.FUZZ_SEED ?? Date.now() % 1_000_000_007);
const LIMITS: HttpLimits = { maxRequestLine: 512, maxHeaderBytes: 2048, maxHeaders: 16, obsFold: 'reject' };

const TEMPLATES = [
  'GET /index.html?q=1 HTTP/1.1\r\nHost: example.test\r\nUser-Agent: fuzz\r\nAccept: */*\r\n\r\n',
  'POST /submit HTTP/1.1\r\nHost: example.test\r\nContent-Type: text/plain\r\nContent-Length: 11\r\n\r\nhello world',
  'POST /up HTTP/1.1\r\nHost: example.test\r\nTransfer-Encoding: chunked\r\n\r\n5;ext=1\r\nhello\r\n6\r\n world\r\n0\r\nX-Trailer: t\r\n\r\n',
  'GET / HTTP/1.1\r\nHost: a.test\r\nConnection: keep-alive, X-Hop\r\nX-Hop: 1\r\nX-Forwarded-For: 10.0.0.1\r\nCookie: a=1; b=2\r\nKeep-Alive: timeout=5\r\n\r\n',
  'GET /old HTTP/1.0\r\nUser-Agent: fuzz\r\n\r\n',
  'OPTIONS * HTTP/1.1\r\nHost: example.test\r\n\r\n',
  'PUT /p HTTP/1.1\r\nHost: example.test\r\nContent-Length: 3\r\nExpect: 100-continue\r\n\r\nabc',
  'DELETE /d HTTP/1.1\r\nHost: example.test\r\nContent-Length: 0\r\n\r\nGET /next HTTP/1.1\r\nHost: example.test\r\n\r\n',
  'GET http://example.test/abs?x=1 HTTP/1.1\r\nHost: example.test\r\n\r\n',
  'GET / HTTP/1.1\r\nHost: example.test\r\nX-Folded: a\r\n b\r\nContent-Length: 2\r\n\r\nok',
  'POST /cl HTTP/1.1\r\nHost: [::1]:80\r\nContent-Length: 4\r\n\r\nPOST /smuggled HTTP/1.1\r\nHost: x\r\n\r\n',
];
const SPECIAL = ['\r', '\n', '\0', ' ', '\t', ':', ',', ';', '\x7f', '\xff', '\x0b', '0', '-', '+', '"', '\r\n', '\r\n\r\n'];
const LINES = [
  'Transfer-Encoding: chunked',
  'Content-Length: 5',
  'Content-Length: 0',
  'Host: other.test',
  'Transfer-Encoding: chunked, identity',
  ' folded',
  'X-A: a\rb',
  'Content-Length: 0, 0',
  'Transfer-Encoding : chunked',
  'Content-Length: 99999999999999999999',
  'Transfer-Encoding: \x0bchunked',
  'Connection: close',
  'Connection: upgrade',
  'Upgrade: websocket',
  'X-Big: ' + 'b'.repeat(600),
  'Content-Length: 1, 1',
  'Transfer-Encoding: chunked, chunked',
  'Transfer-Encoding: Chunked',
  'Host: a b',
  'Host: a/b',
  'Host: u@a',
  'Content-Length: 05',
  ' \tContent-Length: 3',
  'Connection: content-length',
];
const NUMBERS = ['99999999999999999999', '0x10', '-1', '+1', '1e3', '00000000000000000001', 'ffffffffffffff', ''];

/** 1-3 mutations of a template (or of two templates pipelined). */
function mutate(rand: () => number): string {
  const pick = <T>(a: readonly T[]): T => a[Math.floor(rand() * a.length)]!;
  let s = pick(TEMPLATES);
  if (rand() < 0.15) s += pick(TEMPLATES);
  const n = 1 + Math.floor(rand() * 3);
  for (let k = 0; k < n; k++) {
    const at = Math.floor(rand() * (s.length + 1));
    switch (Math.floor(rand() * 8)) {
      case 0:
        s = s.slice(0, at) + String.fromCharCode(Math.floor(rand() * 256)) + s.slice(at + 1);
        break;
      case 1:
        s = s.slice(0, at) + pick(SPECIAL) + s.slice(at);
        break;
      case 2:
        s = s.slice(0, at) + s.slice(at + 1 + Math.floor(rand() * 3));
        break;
      case 3: {
        const lines = s.split('\r\n');
        const i = 1 + Math.floor(rand() * Math.max(1, lines.length - 2));
        lines.splice(i, 0, lines[i] ?? '');
        s = lines.join('\r\n');
        break;
      }
      case 4: {
        const i = s.indexOf('\r\n');
        if (i !== -1) s = s.slice(0, i + 2) + pick(LINES) + '\r\n' + s.slice(i + 2);
        break;
      }
      case 5:
        s = s.replace(/\d+/g, (m) => (rand() < 0.3 ? pick(NUMBERS) : m));
        break;
      case 6:
        s = s.slice(0, at);
        break;
      default: {
        const a = Math.floor(rand() * s.length);
        const b = Math.floor(rand() * s.length);
        s = s.slice(0, a) + s.slice(b, b + 8) + s.slice(a);
      }
    }
  }
  return s;
}

function random(rand: () => number): string {
  const alphabet = 'GETPOST /HTP1.0\r\n:chunkedContent-Length0123456789abcdef,; \t\x00\x7f\xff';
  let s = '';
  const n = Math.floor(rand() * 200);
  for (let i = 0; i < n; i++) s += alphabet[Math.floor(rand() * alphabet.length)];
  return s;
}

interface HeadResult {
  r: number;
  headEnd: number;
  cl: number;
  chunked: boolean;
  count: number;
  method: string;
  target: string;
}

function parseAt(head: HttpHead, data: Buffer, pad: number, junk: number): HeadResult & { buf: Buffer } {
  // data placed at `pad` inside a buffer with junk bytes before and after
  const buf = Buffer.alloc(pad + data.length + 16, junk);
  data.copy(buf, pad);
  const r = head.parseRequest(buf, pad, pad + data.length);
  return { r, headEnd: head.headEnd - pad, cl: head.contentLength, chunked: head.chunked, count: head.count, method: head.method, target: head.target, buf };
}

/**
 * The differential check: a head the proxy's parser accepted must be accepted by the strict
 * reference parser, which must read the same method, target, Host and framing.
 */
function differential(head: HttpHead, buf: Buffer, input: string, problem: (what: string, input: string) => void): void {
  // the head as parsed (unfolded in place when obsFold is 'unfold'), from offset 0
  const ref = strictParseHead(buf.toString('latin1', 0, head.headEnd));
  if (ref === null || typeof ref === 'string') {
    problem(`accepted; the strict parser says ${ref === null ? 'incomplete' : ref}`, input);
    return;
  }
  if (ref.method !== head.method || ref.target !== head.target) problem(`request line read differently: ${ref.method} ${ref.target}`, input);
  if (ref.contentLength !== head.contentLength || ref.chunked !== head.chunked)
    problem(`framing read differently: strict ${ref.contentLength}/${ref.chunked}, proxy ${head.contentLength}/${head.chunked}`, input);
  if ((ref.host ?? '') !== (head.hostCount === 0 ? '' : head.host(buf))) problem(`Host read differently: ${ref.host}`, input);
}

t.test(`parser fuzz (seed ${SEED})`, async (t) => {
  t.comment(`FUZZ_SEED=${SEED}`);
  const rand = prng(SEED);
  const head = new HttpHead(LIMITS);
  const deadline = Date.now() + 4000;
  let cases = 0;
  let ok = 0;
  const problems: string[] = [];
  const problem = (what: string, input: string) => {
    if (problems.length < 20) problems.push(`${what}: ${JSON.stringify(input.slice(0, 300))}`);
  };
  while (cases < 30000 && Date.now() < deadline) {
    cases++;
    const input = rand() < 0.85 ? mutate(rand) : random(rand);
    const data = Buffer.from(input, 'latin1');
    let a: ReturnType<typeof parseAt>;
    let b: ReturnType<typeof parseAt>;
    try {
      a = parseAt(head, data, 0, 0);
      b = parseAt(head, data, 1 + Math.floor(rand() * 64), [13, 10, 32, 58, 0][cases % 5]!);
    } catch (error) {
      problem(`threw ${(error as Error).message}`, input);
      continue;
    }
    if (
      a.r !== b.r ||
      (a.r === PARSE_OK && (a.headEnd !== b.headEnd || a.cl !== b.cl || a.chunked !== b.chunked || a.count !== b.count || a.target !== b.target))
    ) {
      problem(`bytes outside [start, end) changed the result (${a.r} vs ${b.r})`, input);
    }
    if (a.r === PARSE_OK) {
      ok++;
      if (a.chunked && a.cl !== -1) problem('accepted both Content-Length and chunked', input);
      if (head.minor === 1 && head.hostCount !== 1) problem('accepted HTTP/1.1 without exactly one Host', input);
      if (!(a.headEnd > 0 && a.headEnd <= data.length)) problem(`headEnd ${a.headEnd} outside the input`, input);
      // re-parse to check the field offsets of the unpadded run
      head.parseRequest(data, 0, data.length);
      differential(head, data, input, problem);
      for (let i = 0; i < head.count; i++) {
        if (!(
          head.lineStart[i]! >= head.startLineEnd &&
          head.lineEnd[i]! <= head.headEnd &&
          head.nameEnd[i]! > head.lineStart[i]! &&
          head.nameEnd[i]! < head.lineEnd[i]!
        )) {
          problem(`field ${i} offsets out of range`, input);
        }
      }
      // any cut before the end of the head is incomplete, never a different answer
      const cut = Math.floor(rand() * a.headEnd);
      const p = head.parseRequest(data, 0, cut);
      if (p !== PARSE_INCOMPLETE) problem(`prefix of ${cut} bytes gave ${p}`, input);
    } else if (a.r !== PARSE_INCOMPLETE && ![400, 414, 431, 501, 505].includes(a.r)) {
      problem(`unexpected status ${a.r}`, input);
    }
  }
  t.comment(`parser: ${cases} cases, ${ok} accepted heads`);
  t.same(problems, [], 'no problem found');
  t.ok(cases >= 1000, 'enough cases ran');
});

t.test(`parser fuzz with obsFold unfold: what is accepted is strictly valid after unfolding (seed ${SEED})`, async (t) => {
  const rand = prng(SEED ^ 0xf01d);
  const head = new HttpHead({ ...LIMITS, obsFold: 'unfold' });
  const deadline = Date.now() + 2000;
  let cases = 0;
  let folded = 0;
  const problems: string[] = [];
  const problem = (what: string, input: string) => {
    if (problems.length < 20) problems.push(`${what}: ${JSON.stringify(input.slice(0, 300))}`);
  };
  while (cases < 15000 && Date.now() < deadline) {
    cases++;
    let input = mutate(rand);
    // fold some field line: CRLF + SP/HTAB before a random field value
    if (rand() < 0.7) input = input.replace(/(\r\n[!-9;-~]+:[^\r\n]*)\r\n(?=[!-9;-~]+:)/, `$1\r\n${rand() < 0.5 ? ' ' : '\t'}`);
    const buf = Buffer.alloc(input.length + 16);
    buf.write(input, 0, 'latin1');
    let r: number;
    try {
      r = head.parseRequest(buf, 0, input.length);
    } catch (error) {
      problem(`threw ${(error as Error).message}`, input);
      continue;
    }
    if (r !== PARSE_OK) continue;
    const unfolded = buf.toString('latin1', 0, head.headEnd);
    if (unfolded !== input.slice(0, head.headEnd)) folded++;
    if (/\r\n[ \t]/.test(unfolded)) problem('a continuation line is left in an accepted head', input);
    differential(head, buf, input, problem);
  }
  t.comment(`unfold: ${cases} cases, ${folded} accepted heads had a fold`);
  t.same(problems, [], 'no problem found');
  t.ok(folded > 10, `folded heads were accepted and unfolded (${folded})`);
});

/** Chunked bodies: valid ones built from random chunks, then mutated. */
function chunkedBody(rand: () => number): string {
  let s = '';
  const n = Math.floor(rand() * 4);
  for (let i = 0; i < n; i++) {
    const len = 1 + Math.floor(rand() * 20);
    const ext = rand() < 0.3 ? ';a=b' : rand() < 0.1 ? ' ;x' : '';
    s += `${len.toString(16)}${ext}\r\n${'d'.repeat(len)}\r\n`;
  }
  s += '0\r\n' + (rand() < 0.3 ? 'X-T: 1\r\n' : '') + '\r\n';
  const m = Math.floor(rand() * 3);
  for (let k = 0; k < m; k++) {
    const at = Math.floor(rand() * (s.length + 1));
    const r = rand();
    if (r < 0.4) s = s.slice(0, at) + SPECIAL[Math.floor(rand() * SPECIAL.length)] + s.slice(at);
    else if (r < 0.7) s = s.slice(0, at) + s.slice(at + 1);
    else s = s.slice(0, at) + String.fromCharCode(Math.floor(rand() * 256)) + s.slice(at + 1);
  }
  return s;
}

t.test(`chunked scanner fuzz (seed ${SEED})`, async (t) => {
  const rand = prng(SEED ^ 0x5eed);
  const whole = new ChunkedScanner();
  const split = new ChunkedScanner();
  const deadline = Date.now() + 2000;
  let cases = 0;
  let done = 0;
  const problems: string[] = [];
  const problem = (what: string, input: string) => {
    if (problems.length < 20) problems.push(`${what}: ${JSON.stringify(input.slice(0, 200))}`);
  };
  while (cases < 30000 && Date.now() < deadline) {
    cases++;
    const body = chunkedBody(rand);
    const data = Buffer.from(body + 'NEXT', 'latin1');
    whole.reset();
    let e1: number;
    let e2 = -2;
    try {
      e1 = whole.scan(data, 0, data.length);
      // the same bytes in random pieces
      split.reset();
      let p = 0;
      while (p < data.length) {
        const q = Math.min(data.length, p + 1 + Math.floor(rand() * 8));
        const r = split.scan(data, p, q);
        if (r === CHUNKED_ERROR) {
          e2 = CHUNKED_ERROR;
          break;
        }
        if (r < p || r > q) problem(`offset ${r} outside [${p}, ${q}]`, body);
        if (split.done) {
          e2 = r;
          break;
        }
        p = q;
      }
      if (e2 === -2) e2 = data.length;
    } catch (error) {
      problem(`threw ${(error as Error).message}`, body);
      continue;
    }
    if (e1 !== e2 || (e1 !== CHUNKED_ERROR && whole.done !== split.done)) problem(`whole ${e1} vs split ${e2}`, body);
    // An independent strict parser must agree on where the message ends (or that it is bad).
    const strict = strictParseRequest(`POST / HTTP/1.1\r\nHost: x\r\nTransfer-Encoding: chunked\r\n\r\n${body}NEXT`, 1);
    const offset = 'POST / HTTP/1.1\r\nHost: x\r\nTransfer-Encoding: chunked\r\n\r\n'.length;
    if (whole.done) {
      done++;
      if (strict === null || typeof strict === 'string' || strict.used - offset !== e1)
        problem(`scanner ends at ${e1}, strict parser: ${typeof strict === 'string' ? strict : strict === null ? 'incomplete' : strict.used - offset}`, body);
    } else if (e1 === CHUNKED_ERROR) {
      if (strict !== null && typeof strict !== 'string') problem(`scanner rejects (${whole.error}), strict parser accepts`, body);
    } else if (strict !== null && typeof strict !== 'string') {
      problem('scanner wants more, strict parser accepts', body);
    }
  }
  t.comment(`chunked: ${cases} cases, ${done} complete bodies`);
  t.same(problems, [], 'no problem found');
});

t.test(`network fuzz through the proxy (seed ${SEED})`, async (t) => {
  const rand = prng(SEED ^ 0x7e7);
  // The backend answers HEAD without a body (the proxy frames HEAD answers as bodiless).
  const be = await strictBackend((req, socket) => {
    const body = req.method === 'HEAD' ? '' : `req#${req.id}`;
    socket.write(`HTTP/1.1 200 OK\r\ncontent-length: ${req.method === 'HEAD' ? 0 : body.length}\r\nx-seq: ${req.id}\r\n\r\n${body}`);
  });
  const sy = await start(
    config(
      [frontendConfig('web', 'http', 'api', { limits: LIMITS, timeouts: { clientMs: 5000, httpRequestMs: 2000, keepAliveMs: 2000, handshakeMs: 10_000 } })],
      [backendConfig('api', 'http', [be.address], { retries: 0 })],
    ),
  );
  t.teardown(async () => {
    await sy.stop(200);
    await be.close();
  });
  const port = sy.frontendAddress('web').port;
  const deadline = Date.now() + 6000;
  let cases = 0;
  const statuses = new Map<number, number>();
  const problems: string[] = [];
  const problem = (what: string, input: string) => {
    if (problems.length < 20) problems.push(`${what}: ${JSON.stringify(input.slice(0, 300))}`);
  };
  const ran: { input: string; client: string; seqs: number[] }[] = [];
  const one = async () => {
    while (cases < 3000 && Date.now() < deadline) {
      const n = ++cases;
      const input = rand() < 0.9 ? mutate(rand) : random(rand);
      const cut = Math.floor(rand() * input.length);
      const pieces = rand() < 0.5 ? [input] : [input.slice(0, cut), input.slice(cut)];
      const client = `127.9.${n >> 8}.${n & 255}`;
      const seqs: number[] = [];
      ran.push({ input, client, seqs });
      const ex = await exchange(port, pieces, { end: true, gapMs: 5, idleMs: 3000, localAddress: client });
      if (!ex.closed) {
        problem('the proxy neither answered and closed nor closed', input);
        continue;
      }
      const parsed = parseResponses(ex.data);
      if (typeof parsed === 'string') {
        problem(`malformed answer (${parsed})`, input);
        continue;
      }
      if (parsed.rest !== '' && !/^HTTP\/1\.1 100 Continue\r\n\r\n$/.test(parsed.rest))
        problem(`trailing bytes ${JSON.stringify(parsed.rest.slice(0, 60))}`, input);
      parsed.responses.forEach((r, i) => {
        statuses.set(r.status, (statuses.get(r.status) ?? 0) + 1);
        const seq = r.headers.find(([k]) => k === 'x-seq');
        if (seq === undefined) {
          if (![100, 400, 408, 414, 431, 501, 505].includes(r.status)) problem(`unexpected proxy status ${r.status}`, input);
          if (r.status >= 400 && i !== parsed.responses.length - 1) problem('answered more after an error', input);
        } else {
          seqs.push(Number(seq[1]));
          if (r.status !== 200) problem(`backend status ${r.status}`, input);
        }
      });
    }
  };
  await Promise.all(Array.from({ length: 6 }, one));
  t.comment(
    `network: ${cases} cases; answers by status: ${JSON.stringify(Object.fromEntries([...statuses].sort()))}; backend got ${be.requests.length} requests`,
  );
  t.same(problems, [], 'every answer well-formed, errors close the connection');
  t.same(be.violations, [], 'the backend never received anything a strict parser rejects');
  const unmarked = be.requests.filter((r) => !r.marked);
  t.same(
    unmarked.map((r) => r.head),
    [],
    "every request the backend got went through the proxy's parser (ends with its Forwarded line)",
  );

  // The differential check, per case: what the backend got from this client is a prefix of
  // what the strict parser reads in the bytes the client sent, and every answer the client got
  // from the backend is the answer to one of its own requests.
  const byClient = new Map<string, BackendRequest[]>();
  for (const r of be.requests) {
    if (r.client === null) continue;
    const list = byClient.get(r.client) ?? [];
    list.push(r);
    byClient.set(r.client, list);
  }
  const smuggled: string[] = [];
  let compared = 0;
  for (const c of ran) {
    const got = byClient.get(c.client) ?? [];
    byClient.delete(c.client);
    const expected = strictParseAll(c.input);
    const say = (what: string) => {
      if (smuggled.length < 20) smuggled.push(`${what}: ${JSON.stringify(c.input.slice(0, 300))}`);
    };
    if (got.length > expected.length) say(`the backend got ${got.length} requests, the strict parser reads ${expected.length}`);
    got.forEach((g, k) => {
      compared++;
      const e = expected[k];
      if (e === undefined) return;
      const host = (r: BackendRequest) => r.headers.find(([n]) => n === 'host')?.[1] ?? null;
      if (g.method !== e.method || g.target !== e.target) say(`request ${k + 1} is ${g.method} ${g.target}, the client sent ${e.method} ${e.target}`);
      if (g.body !== e.body) say(`request ${k + 1} body ${JSON.stringify(g.body)}, the client sent ${JSON.stringify(e.body)}`);
      if (host(g) !== host(e)) say(`request ${k + 1} Host ${host(g)}, the client sent ${host(e)}`);
    });
    const ids = new Set(got.map((g) => g.id));
    if (!c.seqs.every((s) => ids.has(s))) say(`the client got an answer (x-seq ${c.seqs.join(',')}) to a request it did not send`);
  }
  t.same(
    smuggled,
    [],
    `every request the backend got (${compared}) is one the strict parser reads in that client's bytes, in order; answers go to their own client`,
  );
  t.same([...byClient.keys()], [], 'no request at the backend from an address no case used');
  t.ok(cases >= 300, `enough cases ran (${cases})`);
  const ex = await exchange(port, 'GET /still-alive HTTP/1.1\r\nHost: x\r\n\r\n', { end: true });
  t.match(ex.data, /^HTTP\/1\.1 200 /, 'the proxy still serves a valid request');
});
