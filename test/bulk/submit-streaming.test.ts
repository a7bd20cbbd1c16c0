// POST /jobs's submit path against a real Redis and real BullMQ queues, no worker: a body's full
// chunks are queued while the rest of it is still being read, under a job that stays staging
// (invisible, unable to complete) until the body is whole; a body refused after chunks were
// queued leaves nothing a worker could score or a client could see.
import { openLane } from '../../src/shared/fair-share.ts';
import { IntakeTurns } from '../../src/api/bulk/intake-turns.ts';
import { test, before, after } from 'node:test';
import assert from 'node:assert/strict';
import { createBulkStore, type BulkStore } from '../../src/shared/bulk-store.ts';
import { QUEUES } from '../../src/shared/queues.ts';
import { createProducer, type QueueProducer } from '../../src/shared/queue-clients.ts';
import { submitBulkJob, type SubmitDeps, type SubmitRequest } from '../../src/api/bulk/submit.ts';
import { ChunkBuilder } from '../../src/shared/bulk-chunk.ts';
import type { ParsedRow } from '../../src/api/bulk/parsed-row.ts';
import { prefixedRedis, type PrefixedRedis } from '../helpers/redis-prefix.ts';

const CHUNK = 10;
let redis: PrefixedRedis;
let store: BulkStore;
let producer: QueueProducer<'bulk'>;
let deps: SubmitDeps;

before(async () => {
  redis = await prefixedRedis('submit-streaming');
  store = createBulkStore(redis.client, redis.prefix);
  producer = createProducer(QUEUES.bulk, redis.client, redis.prefix);
  deps = {
    store,
    producer,
    chunkSize: CHUNK,
    maxRecords: 1000,
    ttlSeconds: 600,
    stagingTtlSeconds: 120,
    openLane: (level, ownerJobs) => openLane(redis.client, redis.prefix, level, ownerJobs),
    turns: new IntakeTurns(),
  };
});
after(async () => {
  await producer?.queue.close();
  await redis?.close();
});

const record = (i: number) => ({
  transaction_amount: 10 + i,
  merchant_category: 'grocery',
  card_present: true,
  hour_of_day: 12,
  days_since_last_transaction: 1,
});

/**
 * `rows` valid rows (then `bad` if given), pausing after `pauseAfter` rows until the returned
 * `resume` is called, with `paused` resolving once the pause is reached.
 */
function heldBody(rows: number, pauseAfter: number, bad?: ParsedRow) {
  let resume!: () => void;
  let reached!: () => void;
  const paused = new Promise<void>((r) => (reached = r));
  const gate = new Promise<void>((r) => (resume = r));
  async function* body(): AsyncGenerator<ParsedRow> {
    for (let i = 0; i < rows; i++) {
      if (i === pauseAfter) {
        reached();
        await gate;
      }
      yield { ok: true, record: record(i) };
    }
    if (bad) yield bad;
  }
  return { body: body(), paused, resume };
}

/** A fraud body pinned to fraud/2, as POST /jobs would submit it. */
function fraudRequest(rows: AsyncIterable<ParsedRow>, idempotencyKey: string | undefined): SubmitRequest {
  return {
    rows,
    owner: 'o',
    idempotencyKey,
    lane: { level: 'normal', start: 1, stride: 1 },
    model: { name: 'fraud', version: 2, displayVersion: 'fraud-2' },
    chunks: { encoding: 'columns', builder: new ChunkBuilder(CHUNK) },
  };
}

async function chunkJobIds(): Promise<string[]> {
  const jobs = await producer.queue.getJobs(['waiting', 'prioritized', 'active', 'delayed']);
  return jobs.map((j) => j.id!).sort();
}

test('full chunks are queued while the body is read; the job stays staging until the body is whole', async () => {
  const held = heldBody(35, 25);
  const submitting = submitBulkJob(deps, fraudRequest(held.body, undefined));
  await held.paused;
  // Two full chunks read: both queued, under a job nobody sees and that cannot complete yet.
  const ids = await chunkJobIds();
  assert.equal(ids.length, 2);
  const jobId = ids[0]!.split('.')[0]!;
  assert.deepEqual(ids, [`${jobId}.0`, `${jobId}.1`]);
  const staging = await store.readJob(jobId);
  assert.equal(staging?.staging, true);
  // Opened with its pin, and its early chunks name it: a worker scores them by that version only.
  assert.deepEqual([staging?.modelName, staging?.modelVersionNumber, staging?.modelVersion, staging?.encoding], ['fraud', 2, 'fraud-2', 'columns']);
  const early = await producer.queue.getJob(`${jobId}.0`);
  assert.deepEqual([early?.data.model, early?.data.version, early?.data.encoding], ['fraud', 2, 'columns']);
  // Both chunks scored meanwhile (as a worker would: claim, then commit): still not complete.
  for (const chunk of [0, 1]) {
    assert.equal((await store.claimChunk(jobId, chunk, Date.now())).outcome, 'claimed');
    assert.equal(await store.commitChunk(jobId, chunk, Buffer.from('r'), CHUNK, 'm', Date.now()), 'written');
  }
  assert.equal((await store.readJob(jobId))?.status, 'running');

  held.resume();
  const outcome = await submitting;
  assert.deepEqual(outcome, { jobId, created: true });
  const job = await store.readJob(jobId);
  assert.equal(job?.staging, false);
  assert.equal(job?.total, 35);
  assert.equal(job?.chunks, 4);
  assert.deepEqual(
    await chunkJobIds(),
    [0, 1, 2, 3].map((c) => `${jobId}.${c}`),
  );
  // The last two chunks complete it.
  for (const chunk of [2, 3]) {
    await store.claimChunk(jobId, chunk, Date.now());
    await store.commitChunk(jobId, chunk, Buffer.from('r'), chunk === 3 ? 5 : CHUNK, 'm', Date.now());
  }
  assert.equal((await store.readJob(jobId))?.status, 'completed');
  await producer.queue.obliterate({ force: true });
});

test('a body refused after chunks were queued and scored leaves no job, no input and no results', async () => {
  const bad: ParsedRow = { ok: false, details: [{ path: 'lines.31.hour_of_day', message: 'Too big' }] };
  const held = heldBody(30, 25, bad);
  const submitting = submitBulkJob(deps, fraudRequest(held.body, undefined));
  await held.paused;
  const [first] = await chunkJobIds();
  const jobId = first!.split('.')[0]!;
  await store.claimChunk(jobId, 0, Date.now());
  await store.commitChunk(jobId, 0, Buffer.from('r'), CHUNK, 'm', Date.now());
  held.resume();
  await assert.rejects(submitting, { name: 'ValidationError' });
  assert.equal(await store.readJob(jobId), null);
  // Listed when it was opened, it is no longer: no owner key keeps a job that never was.
  const listed: string[] = [];
  for await (const member of store.ownerJobIds('o', null, 100)) listed.push(member.jobId);
  assert.ok(!listed.includes(jobId));
  // The job's own keys (hash, input, results) are gone, and so are its chunk jobs no worker held.
  const left = (await redis.keys()).filter((k) => k.includes(`bulk:{${jobId}}`));
  assert.deepEqual(left, []);
  assert.deepEqual(await chunkJobIds(), []);
  // One a worker held when the job went finds it gone: it is skipped.
  assert.deepEqual(await store.claimChunk(jobId, 1, Date.now()), { outcome: 'gone' });
  await producer.queue.obliterate({ force: true });
});

test('a body of less than one chunk is recorded and queued in one go, as before', async () => {
  const held = heldBody(7, 100);
  const outcome = await submitBulkJob(deps, fraudRequest(held.body, 'k-small'));
  const job = await store.readJob(outcome.jobId);
  assert.equal(job?.staging, false);
  assert.equal(job?.total, 7);
  assert.deepEqual(await chunkJobIds(), [`${outcome.jobId}.0`]);
  await producer.queue.obliterate({ force: true });
});
