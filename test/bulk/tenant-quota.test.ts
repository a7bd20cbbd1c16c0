// TENANT_MAX_QUEUED_RECORDS with real processes on a private Redis. At first only an online worker
// runs, so jobs wait and the quota fills; a refused job (before its first byte is staged, or
// part-way through its body) leaves no key and no chunk job behind; another key has its own
// quota; once a bulk worker has scored everything, the key's count is back to 0.
import { test, describe, before, after } from 'node:test';
import assert from 'node:assert/strict';
import { Queue } from 'bullmq';
import { startTestRedis, type TestRedis } from '../helpers/redis-server.ts';
import { startApi, startWorker, type ServiceProcess } from '../helpers/processes.ts';
import { readMetric, request } from '../helpers/http.ts';
import { waitFor } from '../helpers/wait.ts';
import { generateFraudRecords } from '../../scripts/model/fraud-data.ts';
import { QUEUES, shardQueueName } from '../../src/shared/queues.ts';

const PREFIX = 'quota';
const KEY_A = 'quota-a-0123456789';
const KEY_B = 'quota-b-0123456789';
const QUOTA = 15_000;
const body = (n: number, seed: number) =>
  generateFraudRecords(seed, n)
    .map((r) => JSON.stringify(r))
    .join('\n') + '\n';

describe('per-key quota of queued records', { timeout: 120_000 }, () => {
  let redis: TestRedis;
  let api: ServiceProcess;
  let online: ServiceProcess;
  let bulk: ServiceProcess | undefined;
  let env: Record<string, string>;
  let bulkQueue: Queue;

  before(async () => {
    redis = await startTestRedis();
    env = {
      REDIS_URL: redis.url,
      QUEUE_PREFIX: PREFIX,
      API_KEYS: `${KEY_A},${KEY_B}`,
      BULK_CHUNK_SIZE: '1000',
      TENANT_MAX_QUEUED_RECORDS: String(QUOTA),
    };
    [api, online] = await Promise.all([startApi(env), startWorker({ ...env, WORKER_QUEUES: 'online' })]);
    bulkQueue = new Queue(shardQueueName(QUEUES.bulk.name, 0, 1), { connection: { url: redis.url }, prefix: PREFIX });
  });
  after(async () => {
    await bulkQueue?.close();
    await Promise.all([api, online, bulk].filter(Boolean).map((p) => p!.stop()));
    await redis?.close();
  });

  const submit = (key: string, n: number, seed: number) =>
    request(`${api.url}/jobs`, {
      method: 'POST',
      headers: { 'content-type': 'application/x-ndjson', authorization: `Bearer ${key}` },
      body: body(n, seed),
    });
  const queued = async (key: string) => (await request(`${api.url}/jobs`, { headers: { authorization: `Bearer ${key}` } })).body.queued_records;
  /** Every bulk key and every chunk job: what a refused job must not add to. */
  const footprint = async () => ({
    keys: (await redis.client.keys(`${PREFIX}:bulk:*`)).length,
    chunks: await bulkQueue.getJobCountByTypes('prioritized', 'waiting', 'delayed', 'active'),
  });

  test('jobs under the quota are taken, and GET /jobs and the metrics show the key’s waiting records', async () => {
    const res = await submit(KEY_A, 10_000, 1);
    assert.equal(res.status, 202, JSON.stringify(res.body));
    assert.equal(await queued(KEY_A), 10_000);
    assert.equal(await queued(KEY_B), 0);
    assert.equal(await readMetric(api.url, 'scoring_tenant_queued_records'), 10_000);
  });

  test('at the quota: 429 quota_exceeded with Retry-After before anything is staged', async () => {
    const before = await footprint();
    const more = await submit(KEY_A, 5_000, 2);
    assert.equal(more.status, 202, 'up to the quota is still taken');
    const atQuota = await footprint();
    const res = await submit(KEY_A, 100, 3);
    assert.equal(res.status, 429, JSON.stringify(res.body));
    assert.equal(res.body.error.code, 'quota_exceeded');
    assert.match(res.headers.get('retry-after') ?? '', /^[1-9]\d*$/);
    assert.deepEqual(await footprint(), atQuota, 'nothing staged, nothing queued');
    assert.notDeepEqual(atQuota, before);
    assert.equal(await queued(KEY_A), 15_000);
  });

  test('past the quota part-way through a body: 429, and what was staged of it is gone', async () => {
    // Let key B fill most of its own quota, then send a body that crosses it after several chunks.
    assert.equal((await submit(KEY_B, 9_000, 4)).status, 202);
    const before = await footprint();
    const res = await submit(KEY_B, 8_000, 5);
    assert.equal(res.status, 429, JSON.stringify(res.body));
    assert.equal(res.body.error.code, 'quota_exceeded');
    assert.ok(res.headers.get('retry-after'));
    assert.deepEqual(await footprint(), before, 'the chunks staged and queued before the refusal are removed');
    assert.equal(await queued(KEY_B), 9_000);
  });

  test('once the jobs are scored, each key’s count is back to 0 and it may submit again', async () => {
    bulk = await startWorker({ ...env, WORKER_QUEUES: 'bulk' });
    await waitFor(async () => ((await queued(KEY_A)) === 0 && (await queued(KEY_B)) === 0 ? true : undefined), {
      timeoutMs: 60_000,
      what: 'both keys drained',
    });
    assert.equal(await readMetric(api.url, 'scoring_tenant_queued_records'), 0);
    assert.equal((await submit(KEY_A, 10_000, 6)).status, 202);
  });
});
