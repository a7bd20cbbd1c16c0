// Exactly one result per record when the worker scoring a job dies: SIGKILLed mid-job (its chunk
// comes back through BullMQ's stalled check and a second worker scores it), or SIGTERMed (it
// finishes the chunk in hand and exits 0). Lock and stalled intervals are short here (3 s / 1 s)
// so recovery takes seconds; the defaults are 10 s / 5 s.
import { test, before, after } from 'node:test';
import assert from 'node:assert/strict';
import { startTestRedis, type TestRedis } from '../helpers/redis-server.ts';
import { startApi, startWorker, type ServiceProcess } from '../helpers/processes.ts';
import { request } from '../helpers/http.ts';
import { waitFor } from '../helpers/wait.ts';
import { generateFraudRecords } from '../../scripts/model/fraud-data.ts';
import { QUEUES, shardQueueName } from '../../src/shared/queues.ts';

const PREFIX = 'bulk-faults';
const RECORDS = 200_000;
// Chunks big enough (tens of ms to score) that a kill lands while one is being scored, not in
// the few ms between a chunk's commit and BullMQ hearing of it (a case the commit's SET NX covers).
const CHUNK = 10_000;

let redis: TestRedis;
let api: ServiceProcess;
let env: Record<string, string>;
let body: string;

before(async () => {
  redis = await startTestRedis();
  env = {
    REDIS_URL: redis.url,
    QUEUE_PREFIX: PREFIX,
    BULK_CHUNK_SIZE: String(CHUNK),
    LOCK_DURATION_MS: '3000',
    STALLED_INTERVAL_MS: '1000',
    OTEL_SDK_DISABLED: 'true',
  };
  api = await startApi(env);
  body = generateFraudRecords(5, RECORDS)
    .map((r, i) => JSON.stringify({ ...r, id: `r-${i}` }))
    .join('\n');
});

after(async () => {
  await api?.stop();
  await redis?.close();
});

async function submit(): Promise<string> {
  const res = await request(`${api.url}/jobs`, { method: 'POST', headers: { 'content-type': 'application/x-ndjson' }, body });
  assert.equal(res.status, 202, JSON.stringify(res.body));
  return res.body.job_id;
}

/** Records scored so far, read straight from the job's hash so the poll is a millisecond, not an HTTP round trip. */
async function done(jobId: string): Promise<number> {
  return Number(await redis.client.hget(`${PREFIX}:bulk:{${jobId}}`, 'done'));
}

async function waitUntilMidJob(jobId: string): Promise<void> {
  await waitFor(async () => (await done(jobId)) > 0, { timeoutMs: 30_000, intervalMs: 2, what: 'the first chunk' });
}

/** Streams every result and checks exactly one per record, in order, each with its record's id. */
async function assertExactlyOncePerRecord(jobId: string): Promise<void> {
  const status = await request(`${api.url}/jobs/${jobId}`);
  assert.equal(status.body.status, 'completed');
  assert.deepEqual(status.body.progress, { total: RECORDS, done: RECORDS });
  const res = await fetch(`${api.url}/jobs/${jobId}/results`, { headers: { accept: 'application/x-ndjson' } });
  assert.equal(res.status, 200);
  let count = 0;
  let rest = '';
  const decoder = new TextDecoder();
  for await (const piece of res.body!) {
    const lines = (rest + decoder.decode(piece, { stream: true })).split('\n');
    rest = lines.pop()!;
    for (const line of lines) {
      const result = JSON.parse(line) as { index: number; id: string; fraud_probability: number };
      assert.equal(result.index, count, `result ${count} is out of order`);
      assert.equal(result.id, `r-${count}`);
      assert.ok(result.fraud_probability >= 0 && result.fraud_probability <= 1);
      count++;
    }
  }
  assert.equal(rest, '');
  assert.equal(count, RECORDS);
  // Every chunk's result exists once; no input is left behind.
  assert.equal(await redis.client.exists(`${PREFIX}:bulk:{${jobId}}:in:0`), 0);
}

test('a worker SIGKILLed mid-job: a second worker finishes it, exactly one result per record, in order', async () => {
  const first = await startWorker(env);
  const jobId = await submit();
  await waitUntilMidJob(jobId);
  // Chunks are queued while the body is read, so the worker may have run out of queued chunks
  // for a moment: the kill waits until it holds one again (BullMQ's active list).
  const active = `${PREFIX}:${shardQueueName(QUEUES.bulk.name, 0, 1)}:active`;
  // Frozen (SIGSTOP) while it holds a chunk, then killed: a sleep between seeing the chunk and the
  // kill raced the chunk's scoring, which slices of a few ms can finish first, and then nothing stalled.
  await waitFor(
    async () => {
      if ((await redis.client.llen(active)) === 0) return false;
      first.proc.kill('SIGSTOP');
      if ((await redis.client.llen(active)) > 0) return true;
      first.proc.kill('SIGCONT');
      return false;
    },
    { timeoutMs: 30_000, intervalMs: 2, what: 'a chunk in hand' },
  );
  await first.stop('SIGKILL');
  const atKill = await done(jobId);
  assert.ok(atKill > 0 && atKill < RECORDS, `killed at ${atKill} of ${RECORDS}`);

  const killedAt = Date.now();
  const second = await startWorker(env);
  try {
    await waitFor(async () => (await request(`${api.url}/jobs/${jobId}`)).body.status === 'completed', {
      timeoutMs: 60_000,
      intervalMs: 100,
      what: 'the job to complete on the second worker',
    });
    console.log(`killed at ${atKill}/${RECORDS}; completed ${Date.now() - killedAt} ms after the kill`);
  } finally {
    await second.stop();
  }
  // The kill landed on a chunk in hand, and BullMQ's stalled check is what brought it back.
  const events = await redis.client.xrange(`${PREFIX}:${shardQueueName(QUEUES.bulk.name, 0, 1)}:events`, '-', '+');
  assert.ok(
    events.some(([, fields]) => fields[0] === 'event' && fields[1] === 'stalled'),
    'no chunk job went through the stalled check',
  );
  await assertExactlyOncePerRecord(jobId);
});

test('a worker SIGTERMed mid-job finishes its chunk and exits 0; the next worker finishes the job, exactly once', async () => {
  const first = await startWorker(env);
  const jobId = await submit();
  await waitUntilMidJob(jobId);
  assert.equal(await first.stop('SIGTERM'), 0);
  const atStop = await done(jobId);
  assert.ok(atStop > 0 && atStop < RECORDS, `stopped at ${atStop} of ${RECORDS}`);
  // The chunk in hand was finished, not abandoned half-scored: progress stands on a chunk boundary.
  // (A chunk that BullMQ's blocking fetch moved to active just as close() began can stay active;
  // it comes back through the stalled check, and the exactly-once check below covers it.)
  assert.equal(atStop % CHUNK, 0);

  const second = await startWorker(env);
  try {
    await waitFor(async () => (await request(`${api.url}/jobs/${jobId}`)).body.status === 'completed', {
      timeoutMs: 60_000,
      intervalMs: 100,
      what: 'the job to complete on the next worker',
    });
  } finally {
    await second.stop();
  }
  await assertExactlyOncePerRecord(jobId);
});
