// Redis at maxmemory under noeviction (the policy BullMQ requires) refuses writes with OOM. A bulk
// submission it refuses is 507 insufficient_storage in the contract's shape and leaves nothing
// behind; /ready and a metric say Redis is full.
import { test, before, after } from 'node:test';
import assert from 'node:assert/strict';
import { startTestRedis, type TestRedis } from '../helpers/redis-server.ts';
import { startApi, type ServiceProcess } from '../helpers/processes.ts';
import { readMetric, request } from '../helpers/http.ts';
import { isContractError, rawExchange } from '../helpers/raw-http.ts';
import { generateFraudRecords } from '../../scripts/model/fraud-data.ts';

const PREFIX = 'full';

let redis: TestRedis;
let api: ServiceProcess;
const ndjson = (count: number, seed: number) =>
  generateFraudRecords(seed, count)
    .map((r) => JSON.stringify(r))
    .join('\n');

before(async () => {
  redis = await startTestRedis();
  await redis.client.config('SET', 'maxmemory-policy', 'noeviction');
  // Telemetry on: the refusals metric is read.
  api = await startApi({ REDIS_URL: redis.url, QUEUE_PREFIX: PREFIX, BULK_CHUNK_SIZE: '2000' });
});

after(async () => {
  await api?.stop();
  await redis?.close();
});

async function usedMemory(): Promise<number> {
  return Number(/used_memory:(\d+)/.exec(await redis.client.info('memory'))![1]);
}

function submit(body: string, key: string) {
  return request(`${api.url}/jobs`, { method: 'POST', headers: { 'content-type': 'application/x-ndjson', 'idempotency-key': key }, body });
}

test('a job Redis runs out of memory for midway is 507 and leaves no key behind', async () => {
  const keysBefore = (await redis.client.keys('*')).sort();
  // Room for a chunk or two of the 40,000-record body, not for all twenty.
  await redis.client.config('SET', 'maxmemory', String((await usedMemory()) + 256 * 1024));
  try {
    // The api answers 507 mid-body and closes; a client still uploading the rest races that close
    // (fetch then fails with EPIPE instead of reading the answer), so the answer is read off the socket.
    const body = Buffer.from(ndjson(40_000, 3));
    const raw = await rawExchange(api.port, (socket) => {
      socket.write(
        `POST /jobs HTTP/1.1\r\nhost: 127.0.0.1\r\ncontent-type: application/x-ndjson\r\nidempotency-key: midway\r\ncontent-length: ${body.length}\r\n\r\n`,
      );
      socket.write(body);
    });
    const res = { status: raw.status, body: JSON.parse(raw.body) as { error: { code: string } }, retryAfter: raw.headers['retry-after'] };
    assert.equal(res.status, 507, raw.raw.slice(0, 500));
    assert.equal(res.body.error.code, 'insufficient_storage');
    assert.ok(isContractError(res.body));
    assert.ok(Number(res.retryAfter) > 0);
    // The bulk queue's own bookkeeping (its id counter, event stream, marker) exists from the first
    // chunk queued while the body was read; nothing of the job is left: hash, chunks, chunk jobs.
    const queueBookkeeping = /:\{bulk-chunk-0\}:(id|events|marker)$/;
    const keysAfter = (await redis.client.keys('*')).filter((k) => keysBefore.includes(k) || !queueBookkeeping.test(k));
    assert.deepEqual(keysAfter.sort(), keysBefore, 'nothing of the refused job is left');
    assert.ok((await readMetric(api.url, 'scoring_redis_oom_refusals_total')) >= 1);
  } finally {
    await redis.client.config('SET', 'maxmemory', '0');
  }
});

test('/ready says when Redis is full, and a job then is refused at once', async () => {
  // Well under what Redis holds: client buffers move used_memory by kilobytes between calls.
  await redis.client.config('SET', 'maxmemory', String(Math.floor((await usedMemory()) / 2)));
  try {
    const ready = await request(`${api.url}/ready`);
    assert.equal(ready.status, 200);
    assert.equal(ready.body.redis_memory.full, true);
    const res = await submit(ndjson(10, 4), 'full-now');
    assert.equal(res.status, 507, JSON.stringify(res.body));
    assert.ok(isContractError(res.body));
  } finally {
    await redis.client.config('SET', 'maxmemory', '0');
  }
  const ready = await request(`${api.url}/ready`);
  assert.equal(ready.body.redis_memory.full, false);
  const res = await submit(ndjson(10, 4), 'full-now');
  assert.equal(res.status, 202, 'with room again, the same key makes the job');
});
