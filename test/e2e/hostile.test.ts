// Hostile clients against a real api process: the admin board and tenant isolation, answers in
// the contract's shape for what Fastify and Node refuse themselves, bodies that trickle, a giant
// field that must not cost memory, clients that hang up, and warnings that repeat by the thousand.
// Online calls that must wait in the queue have a worker that holds fraud but is frozen (SIGSTOP):
// with no live worker at all a call would be refused at once (503 model_unavailable).
import { test, before, after } from 'node:test';
import assert from 'node:assert/strict';
import { request as httpRequest } from 'node:http';
import { startTestRedis, type TestRedis } from '../helpers/redis-server.ts';
import { startApi, startWorker, type ServiceProcess } from '../helpers/processes.ts';
import { request } from '../helpers/http.ts';
import { isContractError, rawExchange, rawRequest, rssBytes } from '../helpers/raw-http.ts';
import { waitFor } from '../helpers/wait.ts';
import { predictQueueName } from '../../src/shared/queues.ts';
import { workersKey } from '../../src/shared/keys.ts';

const PREFIX = 'hostile';
const K1 = { authorization: 'Bearer key-one' };
const K2 = { authorization: 'Bearer key-two' };
const ADMIN = { authorization: 'Bearer admin-key' };
const RECORD = {
  transaction_amount: 12.5,
  merchant_category: 'secret-category-of-k1',
  card_present: true,
  hour_of_day: 3,
  days_since_last_transaction: 1.5,
};

let redis: TestRedis;
let api: ServiceProcess;
let worker: ServiceProcess;

before(async () => {
  redis = await startTestRedis();
  api = await startApi({
    REDIS_URL: redis.url,
    QUEUE_PREFIX: PREFIX,
    API_KEYS: 'key-one,key-two',
    ADMIN_API_KEYS: 'admin-key',
    BODY_TIMEOUT_MS: '1000',
    JOB_BODY_TIMEOUT_MS: '1500',
    HEADERS_TIMEOUT_MS: '2000',
    BULK_CHUNK_SIZE: '2',
    LOG_LEVEL: 'info',
    OTEL_SDK_DISABLED: 'true',
  });
  worker = await startWorker({ REDIS_URL: redis.url, QUEUE_PREFIX: PREFIX, OTEL_SDK_DISABLED: 'true' });
  await waitFor(async () => ((await request(`${api.url}/ready`)).body.models?.fraud ?? []).includes(1), { what: 'fraud/1 held' });
  assert.ok(worker.proc.kill('SIGSTOP'));
});

after(async () => {
  worker?.proc.kill('SIGCONT');
  await worker?.stop();
  await api?.stop();
  await redis?.close();
});

/**
 * The worker frozen just after a fresh heartbeat: the api counts it live, and routes fraud's calls
 * to its queue, for the next ~15 s (three heartbeats), while nothing is scored.
 */
async function freezeWorkerAfterHeartbeat(): Promise<void> {
  const since = Date.now();
  assert.ok(worker.proc.kill('SIGCONT'));
  await waitFor(async () => Number((await redis.client.zrange(workersKey(PREFIX), -1, -1, 'WITHSCORES'))[1] ?? 0) >= since, {
    what: 'a fresh heartbeat',
  });
  assert.ok(worker.proc.kill('SIGSTOP'));
}

/** Staged input chunks in Redis (those of jobs that wait for a worker included). */
async function stagedChunks(): Promise<number> {
  return (await redis.client.keys(`${PREFIX}:bulk:*:in:*`)).length;
}

function assertAuthError(res: { status: number; headers: Headers; body: unknown }, status: number) {
  assert.equal(res.status, status, JSON.stringify(res.body));
  assert.ok(isContractError(res.body), JSON.stringify(res.body));
  assert.match(res.headers.get('www-authenticate') ?? '', /^Bearer/);
}

test('the admin board takes admin keys only, and shows no record contents', async () => {
  // k1's online call waits in the queue (its worker is frozen), its record in the job's data.
  await freezeWorkerAfterHeartbeat();
  const waiting = request(`${api.url}/predict?timeout_ms=3000`, {
    method: 'POST',
    headers: { 'content-type': 'application/json', ...K1 },
    body: JSON.stringify(RECORD),
  });
  const predictQueue = predictQueueName('fraud', 1);
  const board = `${api.url}/admin/queues/api/queues?activeQueue=${encodeURIComponent(predictQueue)}&status=waiting&page=1&jobsPerPage=50`;
  await waitFor(async () => (await redis.client.llen(`${PREFIX}:${predictQueue}:wait`)) > 0, { what: "k1's queued call" });

  assertAuthError(await request(board), 401);
  assertAuthError(await request(board, { headers: { authorization: 'Bearer nobody' } }), 401);
  for (const tenant of [K1, K2]) {
    const res = await request(board, { headers: tenant });
    assertAuthError(res, 403);
    assert.doesNotMatch(JSON.stringify(res.body), /secret-category/);
    assertAuthError(await request(`${api.url}/admin/queues`, { headers: tenant }), 403);
  }

  const res = await request(board, { headers: ADMIN });
  assert.equal(res.status, 200);
  const text = JSON.stringify(res.body);
  const predict = (res.body.queues as { name: string; jobs: { data: unknown }[] }[]).find((q) => q.name === predictQueue);
  assert.ok(predict && predict.jobs.length > 0, text.slice(0, 500));
  assert.doesNotMatch(text, /secret-category/);
  assert.match(JSON.stringify(predict.jobs[0]!.data), /item\(s\) hidden/);
  // Nothing scoring: the call times out, or is refused once nothing has been scored while it waited.
  assert.ok([429, 504].includes((await waiting).status));
});

test("another key sees nothing of a tenant's bulk job", async () => {
  const created = await request(`${api.url}/jobs`, {
    method: 'POST',
    headers: { 'content-type': 'application/x-ndjson', ...K1 },
    body: JSON.stringify(RECORD) + '\n',
  });
  assert.equal(created.status, 202, JSON.stringify(created.body));
  const id = created.body.job_id as string;
  for (const path of [`/jobs/${id}`, `/jobs/${id}/results`]) {
    const res = await request(api.url + path, { headers: K2 });
    assert.equal(res.status, 404);
    assert.ok(isContractError(res.body));
  }
  assert.equal((await request(`${api.url}/jobs/${id}`, { method: 'DELETE', headers: K2 })).status, 404);
  assert.equal((await request(`${api.url}/jobs/${id}`, { headers: K1 })).status, 200);
});

test('the board is off when API_KEYS is set and ADMIN_API_KEYS is not', async () => {
  const other = await startApi({ REDIS_URL: redis.url, QUEUE_PREFIX: PREFIX, API_KEYS: 'key-one', OTEL_SDK_DISABLED: 'true' });
  try {
    const res = await request(`${other.url}/admin/queues/api/queues`, { headers: K1 });
    assert.equal(res.status, 404);
    assert.ok(isContractError(res.body));
  } finally {
    await other.stop();
  }
});

test('ids past the longest id, bad URLs and malformed HTTP get the contract body, echoing nothing', async () => {
  const longId = 'x'.repeat(150);
  const res = await request(`${api.url}/jobs/${longId}`, { headers: K1 });
  assert.equal(res.status, 404);
  assert.ok(isContractError(res.body));
  assert.doesNotMatch(JSON.stringify(res.body), /xxxx/);

  const unknown = await request(`${api.url}/no/such/route-with-marker`, { headers: K1 });
  assert.equal(unknown.status, 404);
  assert.doesNotMatch(JSON.stringify(unknown.body), /marker/);

  const cases: [string, string | Buffer, number][] = [
    ['raw space in the path', 'GET /jobs/a b HTTP/1.1\r\nHost: x\r\n\r\n', 400],
    ['control character in a header', 'GET /health HTTP/1.1\r\nHost: x\r\nX-Bad: a\x01b\r\n\r\n', 400],
    ['16 KB of headers', `GET /health HTTP/1.1\r\nHost: x\r\nX-Big: ${'a'.repeat(17_000)}\r\n\r\n`, 431],
    ['not HTTP at all', 'HELLO THERE\r\n\r\n', 400],
    ['bad percent-encoding', 'GET /jobs/%E0%A4%A HTTP/1.1\r\nHost: x\r\nAuthorization: Bearer key-one\r\n\r\n', 400],
  ];
  for (const [what, text, status] of cases) {
    const answer = await rawRequest(api.port, text);
    assert.equal(answer.status, status, `${what}: ${answer.raw.slice(0, 300)}`);
    assert.ok(isContractError(JSON.parse(answer.body)), `${what}: ${answer.body}`);
    assert.doesNotMatch(answer.body, /jobs\/|aaaa|X-Bad/, what);
  }
});

/** Sends headers, then the body one byte every 100 ms, until the server answers or closes. */
function trickle(path: string, contentType: string, body: string) {
  return rawExchange(api.port, async (socket) => {
    socket.write(
      `POST ${path} HTTP/1.1\r\nHost: x\r\nAuthorization: Bearer key-one\r\nContent-Type: ${contentType}\r\nContent-Length: ${Buffer.byteLength(body)}\r\n\r\n`,
    );
    for (const byte of Buffer.from(body)) {
      if (socket.destroyed) return;
      socket.write(Buffer.of(byte));
      await new Promise((r) => setTimeout(r, 100));
    }
  });
}

test('a trickled body is cut off at the body timeout with 408, and its staged chunks are dropped', async () => {
  const started = Date.now();
  const predict = await trickle('/predict', 'application/json', JSON.stringify(RECORD));
  assert.equal(predict.status, 408, predict.raw.slice(0, 300));
  assert.ok(isContractError(JSON.parse(predict.body)));
  assert.ok(Date.now() - started < 6000, 'cut off near BODY_TIMEOUT_MS (1 s), not at the end of the body');

  const stagedBefore = await stagedChunks();
  // With 2 records per chunk, the first lines are staged before the cut.
  const lines = Array.from({ length: 40 }, (_, i) => JSON.stringify({ ...RECORD, id: `t${i}` })).join('\n');
  const fast = lines.slice(0, 600);
  const jobs = await rawExchange(api.port, async (socket) => {
    socket.write(
      `POST /jobs HTTP/1.1\r\nHost: x\r\nAuthorization: Bearer key-one\r\nContent-Type: application/x-ndjson\r\nContent-Length: ${Buffer.byteLength(lines)}\r\n\r\n${fast}`,
    );
    for (const byte of Buffer.from(lines.slice(fast.length))) {
      if (socket.destroyed) return;
      socket.write(Buffer.of(byte));
      await new Promise((r) => setTimeout(r, 100));
    }
  });
  assert.equal(jobs.status, 408, jobs.raw.slice(0, 300));
  assert.ok(isContractError(JSON.parse(jobs.body)));
  await waitFor(async () => (await stagedChunks()) === stagedBefore, { what: 'staged chunks dropped' });
});

test('headers that trickle are cut off at the headers timeout with 408 in the contract shape', async () => {
  const started = Date.now();
  const answer = await rawExchange(api.port, async (socket) => {
    for (const byte of Buffer.from('GET /health HTTP/1.1\r\nHost: x\r\nX-Slow: ' + 'a'.repeat(200))) {
      if (socket.destroyed) return;
      socket.write(Buffer.of(byte));
      await new Promise((r) => setTimeout(r, 50));
    }
  });
  assert.equal(answer.status, 408, answer.raw.slice(0, 300));
  assert.ok(isContractError(JSON.parse(answer.body)));
  assert.ok(Date.now() - started < 9000, 'cut off near HEADERS_TIMEOUT_MS (2 s), not after all 200 bytes');
});

test('a 300 MB JSON string is refused with 400 while the api stays within 50 MB of its memory', async () => {
  const pid = api.proc.pid!;
  const before = rssBytes(pid);
  const piece = Buffer.alloc(1024 * 1024, 'a');
  const answer = await new Promise<{ status: number; body: string }>((resolve, reject) => {
    const req = httpRequest(`${api.url}/jobs`, {
      method: 'POST',
      headers: { 'content-type': 'application/json', 'transfer-encoding': 'chunked', ...K1 },
    });
    let sent = 0;
    let answered = false;
    req.on('response', (res) => {
      answered = true;
      let body = '';
      res.on('data', (d: Buffer) => (body += d.toString()));
      res.on('end', () => resolve({ status: res.statusCode!, body }));
    });
    req.on('error', (err) => (answered ? undefined : reject(err)));
    const pump = () => {
      while (!answered && sent < 300) {
        const chunk = sent === 0 ? Buffer.concat([Buffer.from('{"records":[{"merchant_category":"'), piece]) : piece;
        sent++;
        if (!req.write(chunk)) return req.once('drain', pump);
      }
      if (!answered) req.end('"}]}');
    };
    pump();
  });
  assert.equal(answer.status, 400, answer.body);
  assert.ok(isContractError(JSON.parse(answer.body)));
  const growth = rssBytes(pid) - before;
  assert.ok(growth < 50 * 1024 * 1024, `api RSS grew by ${(growth / 1048576).toFixed(1)} MB`);
});

test('a client that hangs up mid-upload is an info line, not an error, and nothing is answered', async () => {
  const mark = api.output().length;
  const stagedBefore = await stagedChunks();
  const lines = Array.from({ length: 200 }, (_, i) => JSON.stringify({ ...RECORD, id: `h${i}` })).join('\n');
  await rawExchange(api.port, (socket) => {
    socket.write(
      `POST /jobs HTTP/1.1\r\nHost: x\r\nAuthorization: Bearer key-one\r\nContent-Type: application/x-ndjson\r\nContent-Length: ${Buffer.byteLength(lines) * 2}\r\n\r\n${lines}`,
    );
    setTimeout(() => socket.destroy(), 300);
  });
  await waitFor(() => api.output().slice(mark).includes('client gone'), { what: 'the client-gone log line' });
  const logged = api.output().slice(mark);
  assert.doesNotMatch(logged, /"level":50|unhandled error/);
  await waitFor(async () => (await stagedChunks()) === stagedBefore, { what: 'staged chunks dropped' });
});

test('a burst of 504s writes a line or two, not one per call', async () => {
  await freezeWorkerAfterHeartbeat();
  const mark = api.output().length;
  const calls = Array.from({ length: 60 }, () =>
    request(`${api.url}/predict?timeout_ms=50`, {
      method: 'POST',
      headers: { 'content-type': 'application/json', ...K1 },
      body: JSON.stringify(RECORD),
    }),
  );
  const answers = await Promise.all(calls);
  // Nothing scoring: each call times out (504) or, once nothing has been scored for a second while
  // records wait, is refused at once (429). Both are logged the same sampled way.
  assert.ok(answers.every((a) => (a.status === 504 || a.status === 429) && isContractError(a.body)));
  // The first of an interval is logged at once, the rest once per interval (10 s) with their count.
  const timeoutLines = () =>
    api
      .output()
      .slice(mark)
      .split('\n')
      .filter((l) => l.includes('"code":"timeout"') || l.includes('"code":"overloaded"'))
      .map((l) => JSON.parse(l) as { count: number });
  await waitFor(() => timeoutLines().reduce((n, l) => n + l.count, 0) === answers.length, {
    timeoutMs: 25_000,
    what: 'the counted 504 warnings',
  });
  assert.ok(timeoutLines().length <= 4, `${timeoutLines().length} warning lines (at most two per code)`);
});
