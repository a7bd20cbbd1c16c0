// Worker roles (WORKER_QUEUES) with real processes on a private Redis: an online-only worker never
// takes a bulk chunk and a bulk-only worker never takes an online call. Checked two ways: which
// BullMQ workers Redis knows on each queue (CLIENT LIST, through BullMQ's getWorkers), and what
// happens to the work: chunks wait until a bulk worker comes, online calls are answered only
// while an online worker is live.
import { test, describe, before, after } from 'node:test';
import assert from 'node:assert/strict';
import { Queue } from 'bullmq';
import { startTestRedis, type TestRedis } from '../helpers/redis-server.ts';
import { startApi, startWorker, type ServiceProcess } from '../helpers/processes.ts';
import { postJson, readMetric, request } from '../helpers/http.ts';
import { waitFor } from '../helpers/wait.ts';
import { generateFraudRecords } from '../../scripts/model/fraud-data.ts';
import { QUEUES, predictQueueName, shardQueueName } from '../../src/shared/queues.ts';

const PREFIX = 'roles';
const RECORDS = generateFraudRecords(5, 2500);
const ndjson = RECORDS.map((r) => JSON.stringify(r)).join('\n') + '\n';

describe('worker roles', { timeout: 120_000 }, () => {
  let redis: TestRedis;
  let api: ServiceProcess;
  let online: ServiceProcess;
  let bulk: ServiceProcess | undefined;
  let env: Record<string, string>;
  let bulkQueue: Queue;
  let predictQueue: Queue;

  before(async () => {
    redis = await startTestRedis();
    env = { REDIS_URL: redis.url, QUEUE_PREFIX: PREFIX, BULK_CHUNK_SIZE: '1000' };
    [api, online] = await Promise.all([startApi(env), startWorker({ ...env, WORKER_QUEUES: 'online' })]);
    const connection = { url: redis.url };
    bulkQueue = new Queue(shardQueueName(QUEUES.bulk.name, 0, 1), { connection, prefix: PREFIX });
    predictQueue = new Queue(predictQueueName('fraud', 1), { connection, prefix: PREFIX });
  });
  after(async () => {
    await Promise.all([bulkQueue?.close(), predictQueue?.close()]);
    await Promise.all([api, online, bulk].filter(Boolean).map((p) => p!.stop()));
    await redis?.close();
  });

  const submit = () => request(`${api.url}/jobs`, { method: 'POST', headers: { 'content-type': 'application/x-ndjson' }, body: ndjson });
  const jobStatus = async (id: string) => (await request(`${api.url}/jobs/${id}`)).body;

  let waitingJob: string;

  test('an online-only worker answers calls and drains no bulk queue: a job stays queued', async () => {
    const res = await postJson(`${api.url}/predict`, RECORDS[0]);
    assert.equal(res.status, 200, JSON.stringify(res.body));
    assert.equal((await predictQueue.getWorkers()).length, 1, 'the online worker drains the online queue');
    assert.equal((await bulkQueue.getWorkers()).length, 0, 'no worker drains the bulk queue');
    const accepted = await submit();
    assert.equal(accepted.status, 202, JSON.stringify(accepted.body));
    waitingJob = accepted.body.job_id;
    // Its three chunks sit in the queue, none taken.
    await waitFor(async () => ((await bulkQueue.getJobCounts('prioritized')).prioritized === 3 ? true : undefined), { what: 'three chunks queued' });
    const counts = await bulkQueue.getJobCounts('active', 'completed');
    assert.deepEqual(counts, { active: 0, completed: 0 });
    const s = await jobStatus(waitingJob);
    assert.equal(s.status, 'queued');
    assert.equal(s.progress.done, 0);
  });

  test('a bulk-only worker scores the waiting job and takes no online call', async () => {
    bulk = await startWorker({ ...env, WORKER_QUEUES: 'bulk' });
    assert.equal((await bulkQueue.getWorkers()).length, 1, 'the bulk worker drains the bulk queue');
    assert.equal((await predictQueue.getWorkers()).length, 1, 'still only the online worker drains the online queue');
    await waitFor(async () => ((await jobStatus(waitingJob)).status === 'completed' ? true : undefined), { what: 'the job completed' });
    const calls = await Promise.all(RECORDS.slice(0, 50).map((r) => postJson(`${api.url}/predict`, r)));
    assert.ok(calls.every((c) => c.status === 200));
    assert.equal(await readMetric(bulk.url, 'scoring_records_scored_total', { kind: 'online' }), 0, 'the bulk worker scored no online record');
    assert.equal(await readMetric(bulk.url, 'scoring_records_scored_total', { kind: 'bulk' }), RECORDS.length);
    assert.equal(await readMetric(online.url, 'scoring_records_scored_total', { kind: 'bulk' }), 0, 'the online worker scored no bulk record');
  });

  test('with only a bulk worker live, a call gets 503 model_unavailable at once, and bulk jobs still complete', async () => {
    await online.stop();
    await waitFor(
      async () => {
        const res = await postJson(`${api.url}/predict`, RECORDS[0]);
        return res.status === 503 ? res : undefined;
      },
      { what: '/predict answering 503 once the online worker left' },
    ).then((res) => assert.equal(res.body.error.code, 'model_unavailable'));
    const accepted = await submit();
    assert.equal(accepted.status, 202, JSON.stringify(accepted.body));
    await waitFor(async () => ((await jobStatus(accepted.body.job_id)).status === 'completed' ? true : undefined), {
      what: 'the job pinned and scored by the bulk worker',
    });
  });
});
