// Bulk jobs end to end with real processes on a private Redis: an api + worker pair on one
// prefix, and an api with no worker (jobs stay queued) and a 3-second RESULT_TTL_SECONDS on another.
import { test, describe, before, after } from 'node:test';
import assert from 'node:assert/strict';
import type { Redis } from 'ioredis';
import { startTestRedis, type TestRedis } from '../helpers/redis-server.ts';
import { startApi, startWorker, type ServiceProcess } from '../helpers/processes.ts';
import { request } from '../helpers/http.ts';
import { waitFor } from '../helpers/wait.ts';
import { generateFraudRecords } from '../../scripts/model/fraud-data.ts';
import type { BulkRecord } from '../../src/shared/schemas/record.ts';
import { QUEUES, shardQueueName } from '../../src/shared/queues.ts';

const BULK_QUEUE = shardQueueName(QUEUES.bulk.name, 0, 1);

const KEY_A = 'key-a-0123456789';
const KEY_B = 'key-b-0123456789';
const PREFIX = 'bulk-e2e';
const IDLE_PREFIX = 'bulk-idle';
const CHUNK = 1000;
const BODY_LIMIT = 1_000_000;
const RECORDS: BulkRecord[] = generateFraudRecords(11, 2500).map((r, i) => (i % 2 === 0 ? { ...r, id: `r-${i}` } : r));
const HEADER = 'transaction_amount,merchant_category,card_present,hour_of_day,days_since_last_transaction';

type Result = { index: number; id?: string; fraud_probability: number; decision: string };

let redis: TestRedis;
let api: ServiceProcess;
let worker: ServiceProcess;
let idleApi: ServiceProcess;
let expected: { fraud_probability: number; decision: string }[];

const auth = (key: string) => ({ authorization: `Bearer ${key}` });

function ndjson(records: readonly object[]): string {
  return records.map((r) => JSON.stringify(r)).join('\n') + '\n';
}

function csv(records: readonly BulkRecord[]): string {
  const rows = records.map(
    (r) => `${r.transaction_amount},${r.merchant_category},${r.card_present},${r.hour_of_day},${r.days_since_last_transaction},${r.id ?? ''}`,
  );
  return `${HEADER},id\n${rows.join('\n')}\n`;
}

function submit(baseUrl: string, body: string, contentType: string, headers: Record<string, string> = auth(KEY_A)) {
  return request(`${baseUrl}/jobs`, { method: 'POST', headers: { 'content-type': contentType, ...headers }, body });
}

async function waitForStatus(jobId: string, status: string, key = KEY_A, timeoutMs = 30_000) {
  return waitFor(
    async () => {
      const res = await request(`${api.url}/jobs/${jobId}`, { headers: auth(key) });
      assert.notEqual(res.body.status, 'failed', JSON.stringify(res.body));
      return res.body.status === status ? res.body : undefined;
    },
    { timeoutMs, what: `job ${jobId} ${status}` },
  );
}

async function allPages(jobId: string, limit: number): Promise<Result[]> {
  const results: Result[] = [];
  let offset: number | null = 0;
  while (offset !== null) {
    const res = await request(`${api.url}/jobs/${jobId}/results?offset=${offset}&limit=${limit}`, { headers: auth(KEY_A) });
    assert.equal(res.status, 200, JSON.stringify(res.body));
    results.push(...(res.body.results as Result[]));
    offset = res.body.next_offset;
  }
  return results;
}

function assertMatchesBatch(results: Result[]) {
  assert.equal(results.length, RECORDS.length);
  results.forEach((r, i) => {
    assert.equal(r.index, i);
    assert.equal(r.id, RECORDS[i]!.id);
    // Bit for bit what /predict/batch answers for the same record.
    assert.equal(r.fraud_probability, expected[i]!.fraud_probability, `record ${i}`);
    assert.equal(r.decision, expected[i]!.decision, `record ${i}`);
  });
}

async function jobKeys(client: Redis, prefix: string, jobId = '*'): Promise<string[]> {
  const keys: string[] = [];
  let cursor = '0';
  do {
    const [next, batch] = await client.scan(cursor, 'MATCH', `${prefix}:bulk:{${jobId}}*`, 'COUNT', 1000);
    cursor = next;
    keys.push(...batch);
  } while (cursor !== '0');
  // SCAN's order is the keyspace's, which a rehash reshuffles: compare as sets.
  return keys.sort();
}

before(async () => {
  redis = await startTestRedis();
  const common = { REDIS_URL: redis.url, API_KEYS: `${KEY_A},${KEY_B}`, BULK_CHUNK_SIZE: String(CHUNK), OTEL_SDK_DISABLED: 'true' };
  [api, worker, idleApi] = await Promise.all([
    startApi({ ...common, QUEUE_PREFIX: PREFIX, JOB_BODY_LIMIT_BYTES: String(BODY_LIMIT) }),
    startWorker({ ...common, QUEUE_PREFIX: PREFIX }),
    startApi({ ...common, QUEUE_PREFIX: IDLE_PREFIX, RESULT_TTL_SECONDS: '3' }),
  ]);
  // The reference: the online path's scores for the same records.
  expected = [];
  for (let from = 0; from < RECORDS.length; from += 1000) {
    const records = RECORDS.slice(from, from + 1000).map(({ id: _id, ...r }) => r);
    const res = await request(`${api.url}/predict/batch`, {
      method: 'POST',
      headers: { 'content-type': 'application/json', ...auth(KEY_A) },
      body: JSON.stringify({ records }),
    });
    assert.equal(res.status, 200, JSON.stringify(res.body));
    expected.push(...res.body.results);
  }
});

after(async () => {
  await Promise.all([api?.stop(), worker?.stop(), idleApi?.stop()]);
  await redis?.close();
});

describe('each input format', () => {
  const bodies = {
    'application/json': () => JSON.stringify({ records: RECORDS }),
    'application/x-ndjson': () => ndjson(RECORDS),
    'text/csv': () => csv(RECORDS),
  };
  for (const [type, body] of Object.entries(bodies)) {
    test(`${type} round-trips: every record scored as /predict/batch scores it, in order, with its id`, async () => {
      const res = await submit(api.url, body(), type);
      assert.equal(res.status, 202, JSON.stringify(res.body));
      assert.equal(res.body.status, 'queued');
      assert.equal(res.headers.get('location'), `/jobs/${res.body.job_id}`);
      assert.equal(res.body.results_url, `/jobs/${res.body.job_id}/results`);
      assert.match(res.body.job_id, /^[A-Za-z0-9_-]{22}$/);

      const status = await waitForStatus(res.body.job_id, 'completed');
      assert.deepEqual(status.progress, { total: RECORDS.length, done: RECORDS.length });
      assert.match(status.model_version, /\S/);
      assert.ok(status.created_at <= status.started_at && status.started_at <= status.finished_at, JSON.stringify(status));
      assert.equal(status.error, null);
      // Pages of 700 cross the chunk boundaries (1000) at different places.
      assertMatchesBatch(await allPages(res.body.job_id, 700));
    });
  }
});

test('results stream as NDJSON and CSV by Accept, the same results as the pages', async () => {
  const res = await submit(api.url, ndjson(RECORDS), 'application/x-ndjson');
  const jobId = res.body.job_id;
  await waitForStatus(jobId, 'completed');
  const paged = await allPages(jobId, 10_000);

  const nd = await fetch(`${api.url}/jobs/${jobId}/results`, { headers: { ...auth(KEY_A), accept: 'application/x-ndjson' } });
  assert.equal(nd.status, 200);
  assert.match(nd.headers.get('content-type') ?? '', /application\/x-ndjson/);
  const lines = (await nd.text()).trimEnd().split('\n');
  assert.deepEqual(
    lines.map((l) => JSON.parse(l)),
    paged,
  );

  const c = await fetch(`${api.url}/jobs/${jobId}/results`, { headers: { ...auth(KEY_A), accept: 'text/csv' } });
  assert.equal(c.status, 200);
  assert.match(c.headers.get('content-type') ?? '', /text\/csv/);
  const [header, ...rows] = (await c.text()).trimEnd().split('\n');
  assert.equal(header, 'index,id,fraud_probability,decision');
  assert.deepEqual(
    rows.map((row) => {
      const [index, id, p, decision] = row.split(',');
      return { index: Number(index), ...(id ? { id } : {}), fraud_probability: Number(p), decision };
    }),
    paged,
  );

  const page = await request(`${api.url}/jobs/${jobId}/results?offset=2400&limit=500`, { headers: auth(KEY_A) });
  assert.equal(page.body.results.length, 100);
  assert.equal(page.body.next_offset, null);
  const tooBig = await request(`${api.url}/jobs/${jobId}/results?limit=10001`, { headers: auth(KEY_A) });
  assert.equal(tooBig.status, 400);
});

describe('a bad body is refused whole, naming its rows, and creates no job', () => {
  test('NDJSON: line numbers and fields; chunks staged before the bad line are deleted', async () => {
    const before = await jobKeys(redis.client, PREFIX);
    // 2,500 good records (two chunks staged) before the first bad line.
    const body = ndjson(RECORDS) + JSON.stringify({ ...RECORDS[1], hour_of_day: 25 }) + '\nnot json\n';
    const res = await submit(api.url, body, 'application/x-ndjson');
    assert.equal(res.status, 400);
    assert.equal(res.body.error.code, 'validation_error');
    assert.deepEqual(
      res.body.error.details.map((d: { path: string }) => d.path),
      ['lines.2501.hour_of_day', 'lines.2502'],
    );
    assert.deepEqual(await jobKeys(redis.client, PREFIX), before);
  });

  test('CSV: the header is line 1', async () => {
    const res = await submit(api.url, `${HEADER}\n12.5,grocery,true,3,1\n12.5,grocery,yes,3,-1\n`, 'text/csv');
    assert.equal(res.status, 400);
    assert.deepEqual(
      res.body.error.details.map((d: { path: string }) => d.path),
      ['lines.3.card_present', 'lines.3.days_since_last_transaction'],
    );
  });

  test('JSON: at most the first 100 problems are listed', async () => {
    const bad = Array.from({ length: 150 }, () => ({ ...RECORDS[1], merchant_category: '' }));
    const res = await submit(api.url, JSON.stringify({ records: bad }), 'application/json');
    assert.equal(res.status, 400);
    assert.equal(res.body.error.details.length, 100);
    assert.equal(res.body.error.details[99].path, 'records.99.merchant_category');
  });

  test('no records, an unknown content type, a body over the limit', async () => {
    assert.equal((await submit(api.url, '', 'application/x-ndjson')).status, 400);
    const plain = await submit(api.url, 'x', 'text/plain');
    assert.equal(plain.status, 415);
    assert.equal(plain.body.error.code, 'unsupported_media_type');

    const before = await jobKeys(redis.client, PREFIX);
    const big = ndjson(RECORDS).repeat(4); // ~1.3 MB
    const declared = await submit(api.url, big, 'application/x-ndjson');
    assert.equal(declared.status, 413);
    assert.equal(declared.body.error.code, 'payload_too_large');
    // Chunked, with no content-length: the limit holds while streaming.
    const bytes = Buffer.from(big);
    const streamed = await request(`${api.url}/jobs`, {
      method: 'POST',
      headers: { 'content-type': 'application/x-ndjson', ...auth(KEY_A) },
      body: new ReadableStream({
        start(controller) {
          for (let i = 0; i < bytes.length; i += 65_536) controller.enqueue(bytes.subarray(i, i + 65_536));
          controller.close();
        },
      }),
      duplex: 'half',
    } as RequestInit);
    assert.equal(streamed.status, 413);
    assert.deepEqual(await jobKeys(redis.client, PREFIX), before);
  });
});

test('an unknown job is 404', async () => {
  for (const path of ['/jobs/nope', '/jobs/nope/results']) {
    const res = await request(`${api.url}${path}`, { headers: auth(KEY_A) });
    assert.equal(res.status, 404);
    assert.equal(res.body.error.code, 'not_found');
  }
  assert.equal((await request(`${api.url}/jobs/nope`, { method: 'DELETE', headers: auth(KEY_A) })).status, 404);
});

test("another key's job is 404 to it, and no key is 401", async () => {
  const res = await submit(api.url, ndjson(RECORDS.slice(0, 10)), 'application/x-ndjson');
  const jobId = res.body.job_id;
  await waitForStatus(jobId, 'completed');
  for (const init of [{}, { method: 'DELETE' }] as RequestInit[]) {
    assert.equal((await request(`${api.url}/jobs/${jobId}`, { ...init, headers: auth(KEY_B) })).status, 404);
  }
  assert.equal((await request(`${api.url}/jobs/${jobId}/results`, { headers: auth(KEY_B) })).status, 404);
  assert.equal((await request(`${api.url}/jobs/${jobId}`)).status, 401);
  assert.equal((await request(`${api.url}/jobs/${jobId}`, { headers: auth(KEY_A) })).body.status, 'completed');
});

test('the same Idempotency-Key returns the same job; the same key of another owner does not', async () => {
  const body = ndjson(RECORDS.slice(0, 10));
  const first = await submit(api.url, body, 'application/x-ndjson', { ...auth(KEY_A), 'idempotency-key': 'order-42' });
  const again = await submit(api.url, body, 'application/x-ndjson', { ...auth(KEY_A), 'idempotency-key': 'order-42' });
  const other = await submit(api.url, body, 'application/x-ndjson', { ...auth(KEY_B), 'idempotency-key': 'order-42' });
  assert.equal(first.status, 202);
  assert.equal(again.status, 202);
  assert.equal(again.body.job_id, first.body.job_id);
  assert.equal(again.headers.get('idempotent-replayed'), 'true');
  assert.notEqual(other.body.job_id, first.body.job_id);
});

test('results are 409 until the job has completed', async () => {
  const res = await submit(idleApi.url, ndjson(RECORDS.slice(0, 10)), 'application/x-ndjson');
  assert.equal(res.status, 202);
  const results = await request(`${idleApi.url}/jobs/${res.body.job_id}/results`, { headers: auth(KEY_A) });
  assert.equal(results.status, 409);
  assert.equal(results.body.error.code, 'not_ready');
});

test('job state and results expire after RESULT_TTL_SECONDS, by Redis EXPIRE', async () => {
  const res = await submit(idleApi.url, ndjson(RECORDS), 'application/x-ndjson', { ...auth(KEY_A), 'idempotency-key': 'ttl' });
  const jobId = res.body.job_id;
  const keys = await jobKeys(redis.client, IDLE_PREFIX, jobId);
  assert.equal(keys.length, 1 + 3); // the hash and three staged chunks
  for (const key of keys) {
    const ttl = await redis.client.pttl(key);
    assert.ok(ttl > 0 && ttl <= 3000, `${key} ttl ${ttl}`);
  }
  const status = await request(`${idleApi.url}/jobs/${jobId}`, { headers: auth(KEY_A) });
  assert.equal(Date.parse(status.body.expires_at) - Date.parse(status.body.created_at), 3000);
  await waitFor(async () => (await request(`${idleApi.url}/jobs/${jobId}`, { headers: auth(KEY_A) })).status === 404, {
    timeoutMs: 8000,
    what: 'the job to expire',
  });
  assert.deepEqual(await jobKeys(redis.client, IDLE_PREFIX, jobId), []);
  assert.equal(await redis.client.keys(`${IDLE_PREFIX}:bulk-idem:*`).then((k) => k.length), 0);
});

test('a worker that comes later skips a cancelled job and fails a job whose chunk cannot be scored', async () => {
  const cancelledJob = (await submit(idleApi.url, ndjson(RECORDS), 'application/x-ndjson')).body.job_id;
  const cancelled = await request(`${idleApi.url}/jobs/${cancelledJob}`, { method: 'DELETE', headers: auth(KEY_A) });
  assert.equal(cancelled.status, 202);
  assert.equal(cancelled.body.status, 'cancelled');
  assert.ok(cancelled.body.finished_at);
  // A job whose second chunk is lost cannot finish: it must end failed, not stay running.
  const brokenJob = (await submit(idleApi.url, ndjson(RECORDS), 'application/x-ndjson')).body.job_id;
  assert.equal(await redis.client.del(`${IDLE_PREFIX}:bulk:{${brokenJob}}:in:1`), 1);

  const late = await startWorker({ REDIS_URL: redis.url, QUEUE_PREFIX: IDLE_PREFIX, OTEL_SDK_DISABLED: 'true' });
  try {
    await waitFor(
      async () =>
        (await redis.client.llen(`${IDLE_PREFIX}:${BULK_QUEUE}:wait`)) + (await redis.client.llen(`${IDLE_PREFIX}:${BULK_QUEUE}:active`)) === 0,
      { what: 'the chunk jobs to drain' },
    );
    const broken = await waitFor(
      async () => {
        const res = await request(`${idleApi.url}/jobs/${brokenJob}`, { headers: auth(KEY_A) });
        return res.body.status === 'failed' ? res.body : undefined;
      },
      { what: 'the broken job to fail' },
    );
    assert.match(broken.error, /chunk 1/);
    assert.ok(broken.finished_at);
    const results = await request(`${idleApi.url}/jobs/${brokenJob}/results`, { headers: auth(KEY_A) });
    assert.equal(results.status, 409);
  } finally {
    await late.stop();
  }
  const status = await request(`${idleApi.url}/jobs/${cancelledJob}`, { headers: auth(KEY_A) });
  assert.equal(status.body.status, 'cancelled');
  assert.equal(status.body.progress.done, 0);
  assert.deepEqual(await jobKeys(redis.client, IDLE_PREFIX, cancelledJob), [`${IDLE_PREFIX}:bulk:{${cancelledJob}}`]);
  assert.equal((await request(`${idleApi.url}/jobs/${cancelledJob}/results`, { headers: auth(KEY_A) })).status, 409);
});
