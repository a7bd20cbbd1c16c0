// The online dispatcher in-process, against a real Redis and a real BullMQ consumer made by the
// catalog's factory: coalescing, one queue per model version, reply routing (ok, outputs,
// model_error, model_not_found), timeouts and admission.
import { after, afterEach, before, test } from 'node:test';
import assert from 'node:assert/strict';
import { UnrecoverableError } from 'bullmq';
import { trace } from '@opentelemetry/api';
import { startTestRedis, type TestRedis } from '../helpers/redis-server.ts';
import { waitFor } from '../helpers/wait.ts';
import { createRedis } from '../../src/shared/redis.ts';
import { predictQueue, predictQueueName, type OnlineReply, type PredictJob, type PredictOutcome } from '../../src/shared/queues.ts';
import { createConsumer, createProducer, type Consumer } from '../../src/shared/queue-clients.ts';
import { publishReplies } from '../../src/shared/reply-channel.ts';
import { recordsScoredKey } from '../../src/shared/keys.ts';
import { ADMISSION_SAMPLE_INTERVAL_MS, OnlineDispatcher, type CallResult } from '../../src/api/online-dispatcher.ts';
import { ModelError, ModelNotFoundError, OverloadedError, TimeoutError, UnavailableError } from '../../src/shared/errors.ts';
import type { FraudRecord } from '../../src/shared/schemas/record.ts';

/** A producer of one version's queue sending to a given shard of three, as another api would. */
function createProducerOnShard(conn: ReturnType<typeof createRedis>, prefix: string, version: number, shard: number) {
  return createProducer(predictQueue(MODEL, version), conn, prefix, { shards: 3, shard });
}

const record: FraudRecord = {
  transaction_amount: 10,
  merchant_category: 'travel',
  card_present: true,
  hour_of_day: 1,
  days_since_last_transaction: 1,
};
const silent = { debug() {}, info() {}, warn() {}, error() {} };
const MODEL = 'm';
const VERSION = 1;

let redis: TestRedis;
let prefixCount = 0;
const closers: (() => Promise<unknown> | void)[] = [];

before(async () => {
  redis = await startTestRedis();
});
afterEach(async () => {
  for (const close of closers.splice(0).reverse()) await close();
});
after(async () => {
  await redis.close();
});

/** A dispatcher on a fresh prefix, with its own connections, closed after the test. */
function dispatcher(options: { maxWaiting?: number; maxRecordsPerJob?: number; shards?: number; shard?: number } = {}) {
  const prefix = `dispatch-${prefixCount++}`;
  const conn = createRedis(redis.url, 'producer', 'test-api');
  const subscriber = createRedis(redis.url, 'consumer', 'test-api-replies');
  const online = new OnlineDispatcher({
    redis: conn,
    sharding: { shards: options.shards ?? 1, shard: options.shard ?? 0 },
    subscriber,
    prefix,
    maxRecordsPerJob: options.maxRecordsPerJob ?? 1000,
    drainTimeoutMs: 30_000,
    maxWaiting: options.maxWaiting ?? 1000,
    logger: silent,
    tracer: trace.getTracer('test'),
  });
  online.start();
  const producer = online.producer(MODEL, VERSION);
  closers.push(async () => {
    await online.close();
    subscriber.disconnect();
    conn.disconnect();
  });
  return { online, producer, prefix, conn };
}

/** A real consumer of the predict queue that answers each call with `answer`, a job after `delayMs(job)` when given. */
function consumer(
  prefix: string,
  answer: (call: PredictJob['calls'][number]) => OnlineReply,
  version = VERSION,
  delayMs?: (job: PredictJob) => number,
): { worker: Consumer<PredictOutcome, 'predict'>; jobs: PredictJob[] } {
  const connection = createRedis(redis.url, 'consumer', 'test-worker');
  const publisher = createRedis(redis.url, 'consumer', 'test-worker-plain');
  const jobs: PredictJob[] = [];
  const worker = createConsumer(
    predictQueue(MODEL, version),
    async (job): Promise<PredictOutcome> => {
      jobs.push(job);
      if (delayMs) await new Promise((r) => setTimeout(r, delayMs(job)));
      await publishReplies(publisher, new Map([[job.reply_to, job.calls.map(answer)]]));
      return 'scored';
    },
    { connection, prefix, concurrency: 4, lockDurationMs: 10_000, stalledIntervalMs: 5000 },
  );
  closers.push(async () => {
    await worker.close();
    connection.disconnect();
    publisher.disconnect();
  });
  return { worker, jobs };
}

const ok = (call: PredictJob['calls'][number]): OnlineReply => ({
  call_id: call.call_id,
  status: 'outputs',
  outputs: call.records!.map((r) => ({ fraud_probability: (r as FraudRecord).transaction_amount / 100, decision: 'approve' })),
  model_name: MODEL,
  model_version: 'test-1',
  timings: { queue_ms: 0, batch_wait_ms: 0, inference_ms: 0, batch_records: call.records!.length },
});

/** The probability of each record of a call, as the worker's reply gives it. */
const probabilities = (result: CallResult) => result.outputs.map((o) => o.fraud_probability);

async function ready(conn: { status: string }) {
  await waitFor(() => conn.status === 'ready', { what: 'the producer connection' });
}

test('calls of one event-loop turn share one queue job, and each gets its own reply', async () => {
  const { online, prefix, conn } = dispatcher();
  const { jobs } = consumer(prefix, ok);
  await ready(conn);
  const results = await Promise.all([1, 2, 3].map((i) => online.submit(MODEL, VERSION, [{ ...record, transaction_amount: i * 10 }], 5000)));
  assert.deepEqual(results.map(probabilities), [[0.1], [0.2], [0.3]]);
  assert.equal(jobs.length, 1);
  assert.equal(jobs[0]!.calls.length, 3);
  assert.equal(online.pendingCalls, 0);
});

test('a turn past maxRecordsPerJob is split across jobs without splitting a call', async () => {
  const { online, prefix, conn } = dispatcher({ maxRecordsPerJob: 3 });
  const { jobs } = consumer(prefix, ok);
  await ready(conn);
  await Promise.all([
    online.submit(MODEL, VERSION, [record, record], 5000),
    online.submit(MODEL, VERSION, [record, record], 5000),
    online.submit(MODEL, VERSION, [record], 5000),
  ]);
  assert.deepEqual(
    jobs.map((j) => j.calls.map((c) => c.records!.length)),
    [[2], [2, 1]],
  );
});

test('calls of one turn for two versions go to two queues, each answered by its own consumer', async () => {
  const { online, prefix, conn } = dispatcher();
  const v1 = consumer(prefix, ok);
  const v2 = consumer(
    prefix,
    (call) => ({
      call_id: call.call_id,
      status: 'outputs',
      outputs: call.records!.map((r) => ({ echo: r.x })),
      model_name: MODEL,
      model_version: '2',
      timings: { queue_ms: 0, batch_wait_ms: 0, inference_ms: 0, batch_records: call.records!.length },
    }),
    2,
  );
  await ready(conn);
  const [a, b] = await Promise.all([online.submit(MODEL, VERSION, [record], 5000), online.submit(MODEL, 2, [{ x: 7 }], 5000)]);
  assert.deepEqual(probabilities(a), [0.1]);
  assert.equal(a.modelVersion, 'test-1');
  assert.deepEqual(b.outputs, [{ echo: 7 }]);
  assert.equal(b.modelVersion, '2');
  assert.deepEqual([v1.jobs.length, v2.jobs.length], [1, 1], 'one job per queue, none mixing versions');
});

test('a model_not_found reply (the version left the worker) rejects with ModelNotFoundError (404)', async () => {
  const { online, prefix, conn } = dispatcher();
  consumer(prefix, (call) => ({ call_id: call.call_id, status: 'error', code: 'model_not_found', message: 'gone' }));
  await ready(conn);
  const err = await online.submit(MODEL, VERSION, [record], 5000).catch((e: unknown) => e);
  assert.ok(err instanceof ModelNotFoundError);
  assert.equal(err.statusCode, 404);
});

test('a model_error reply rejects its call with ModelError (500 model_error)', async () => {
  const { online, prefix, conn } = dispatcher();
  consumer(prefix, (call) => ({ call_id: call.call_id, status: 'error', code: 'model_error', message: 'model m failed: boom' }));
  await ready(conn);
  const err = await online.submit(MODEL, VERSION, [record], 5000).catch((e: unknown) => e);
  assert.ok(err instanceof ModelError);
  assert.equal(err.statusCode, 500);
  assert.equal(err.code, 'model_error');
  assert.equal(err.message, 'model m failed: boom');
});

test('a call whose caller gives up in its own turn is withdrawn: never queued, rejected with the reason', async () => {
  const { online, prefix, conn } = dispatcher();
  const { jobs } = consumer(prefix, ok);
  await ready(conn);
  const controller = new AbortController();
  const gone = online.submit(MODEL, VERSION, [{ ...record, transaction_amount: 10 }], 5000, { signal: controller.signal });
  const kept = online.submit(MODEL, VERSION, [{ ...record, transaction_amount: 20 }], 5000);
  controller.abort(new Error('client hung up'));
  await assert.rejects(gone, /client hung up/);
  assert.deepEqual(probabilities(await kept), [0.2]);
  assert.equal(jobs.length, 1);
  assert.deepEqual(
    jobs[0]!.calls.map((c) => (c.records![0] as FraudRecord).transaction_amount),
    [20],
    'only the kept call reached the queue',
  );
  // An already aborted signal is refused before anything is made.
  await assert.rejects(online.submit(MODEL, VERSION, [record], 5000, { signal: AbortSignal.abort(new Error('already gone')) }), /already gone/);
  assert.equal(online.pendingCalls, 0);
});

test('a queued call whose caller gives up rejects at once, not at its timeout', async () => {
  const { online, producer, conn } = dispatcher();
  await ready(conn);
  const controller = new AbortController();
  const started = Date.now();
  const call = online.submit(MODEL, VERSION, [record], 10_000, { signal: controller.signal });
  // Nobody consumes: the call waits in the queue until the caller gives up.
  await waitFor(async () => (await producer.queue.getWaitingCount()) === 1, { what: 'the job queued' });
  controller.abort(new Error('cancelled'));
  await assert.rejects(call, /cancelled/);
  assert.ok(Date.now() - started < 5000);
  assert.equal(online.pendingCalls, 0);
});

test('no reply within the timeout: TimeoutError, and the call is forgotten', async () => {
  const { online, conn } = dispatcher();
  await ready(conn);
  await assert.rejects(online.submit(MODEL, VERSION, [record], 50), TimeoutError);
  assert.equal(online.pendingCalls, 0);
  assert.equal(online.recordsWaiting, 1, 'the job still waits in the queue: nobody consumes it');
});

test('past ONLINE_MAX_WAITING jobs: 429 at once', async () => {
  const { online, producer, conn } = dispatcher({ maxWaiting: 2 });
  await ready(conn);
  for (let i = 0; i < 3; i++) await assert.rejects(online.submit(MODEL, VERSION, [record], 20), TimeoutError);
  await waitFor(async () => (await producer.queue.getWaitingCount()) === 3 && online.recordsWaiting >= 3, { what: 'the waiting count sampled' });
  const err = await online.submit(MODEL, VERSION, [record], 1000).catch((e: unknown) => e);
  assert.ok(err instanceof OverloadedError);
  assert.equal(err.headers['retry-after'], '1');
});

test("sharded: each version is sent to this api's shard of its queue; waiting jobs of every version and shard add up to the bound", async () => {
  const { online, prefix, conn } = dispatcher({ maxWaiting: 3, shards: 3, shard: 2 });
  await ready(conn);
  await assert.rejects(online.submit(MODEL, 1, [record], 20), TimeoutError);
  await assert.rejects(online.submit(MODEL, 2, [record], 20), TimeoutError);
  const waiting = async (version: number, shard: number) => redis.client.llen(`${prefix}:${predictQueueName(MODEL, version, shard, 3)}:wait`);
  for (const version of [1, 2]) {
    assert.deepEqual(await Promise.all([0, 1, 2].map((shard) => waiting(version, shard))), [0, 0, 1], `version ${version}'s shards`);
  }
  // Another api's calls, sent to other shards: version 1's shard 0 and version 2's shard 1.
  for (const [version, shard] of [
    [1, 0],
    [2, 1],
  ] as const) {
    const other = createProducerOnShard(conn, prefix, version, shard);
    await other.queue.add('predict', { reply_to: 'nobody', enqueued_at: Date.now(), calls: [{ call_id: 'x', deadline: 0, records: [record] }] });
    await other.queue.close();
  }
  assert.equal(await waiting(1, 0), 1);
  assert.equal(await waiting(2, 1), 1);
  // Four jobs wait, none more than two on one version or one on one shard: only their sum passes the bound.
  await waitFor(() => online.recordsWaiting >= 4, { what: 'every version and shard sampled' });
  const err = await online.submit(MODEL, 1, [record], 1000).catch((e: unknown) => e);
  assert.ok(err instanceof OverloadedError, String(err));
});

/**
 * 200 records waiting in the queue (two 100-record calls nobody consumes: their callers timed
 * out) while the records-scored counter says 50 a second are scored, until stopScoring().
 */
async function waitingAt50PerSecond(maxRecordsPerJob: number) {
  const { online, producer, prefix, conn } = dispatcher({ maxRecordsPerJob });
  await ready(conn);
  for (let i = 0; i < 2; i++) {
    await assert.rejects(
      online.submit(
        MODEL,
        VERSION,
        Array.from({ length: 100 }, () => record),
        20,
      ),
      TimeoutError,
    );
  }
  assert.equal(await producer.queue.getWaitingCount(), 2);
  const key = recordsScoredKey(prefix);
  const tick = setInterval(() => void redis.client.incrby(key, 5), 100);
  const stopScoring = () => clearInterval(tick);
  closers.push(async () => stopScoring());
  await waitFor(() => online.ratePerSecond !== undefined && online.ratePerSecond > 30 && online.ratePerSecond < 80, {
    what: 'a measured rate near 50/s',
  });
  return { online, prefix, stopScoring };
}

test('records waiting past what the measured rate scores within the timeout: 429 with that wait as Retry-After', async () => {
  // Jobs of at most 100 records: the 200 waiting are more than the next job.
  const { online, prefix } = await waitingAt50PerSecond(100);
  // 200 records at 50/s: 4 s predicted, past a 1 s timeout and within a 10 s one.
  const err = await online.submit(MODEL, VERSION, [record], 1000).catch((e: unknown) => e);
  assert.ok(err instanceof OverloadedError, String(err));
  const retryAfter = Number(err.headers['retry-after']);
  assert.ok(retryAfter >= 3 && retryAfter <= 7, `Retry-After ${retryAfter}`);
  // A call whose timeout covers the wait is taken; a consumer then answers it.
  const accepted = online.submit(MODEL, VERSION, [record], 10_000);
  assert.equal(online.pendingCalls, 1);
  consumer(prefix, ok);
  assert.deepEqual(probabilities(await accepted), [0.1]);
});

test('no more than one queue job of records waiting: taken even at a slow measured rate (the next batch holds them); refused once nothing is scored', async () => {
  const { online, stopScoring } = await waitingAt50PerSecond(1000);
  // 200 records at 50/s would be 4 s, past a 1 s timeout: but they and this call fit one job.
  void online.submit(MODEL, VERSION, [record], 1000).catch(() => undefined);
  assert.equal(online.pendingCalls, 1);
  // The counter stops: a frozen worker. Within the rate window its callers are refused at once.
  stopScoring();
  await waitFor(() => online.ratePerSecond === 0, { what: 'a measured rate of zero', timeoutMs: 10_000 });
  const err = await online.submit(MODEL, VERSION, [record], 1000).catch((e: unknown) => e);
  assert.ok(err instanceof OverloadedError, String(err));
});

test('after a burst of large jobs, one-record calls at low load are not refused for it', async () => {
  const { online, prefix, conn } = dispatcher();
  const scoredKey = recordsScoredKey(prefix);
  // A consumer that advances the records-scored counter, as workers do, so admission measures a rate.
  consumer(prefix, (call) => (void redis.client.incrby(scoredKey, call.records!.length), ok(call)));
  await ready(conn);
  for (let i = 0; i < 10; i++) {
    await online.submit(
      MODEL,
      VERSION,
      Array.from({ length: 500 }, () => record),
      5000,
    );
  }
  // One sample past the burst, then one caller at a time: each waiting job holds one record, not 500.
  await waitFor(() => online.meanRecordsPerJob === 500, { what: 'the burst sampled' });
  const refused: unknown[] = [];
  const end = Date.now() + 1500;
  while (Date.now() < end && refused.length === 0) await online.submit(MODEL, VERSION, [record], 300).catch((e: unknown) => refused.push(e));
  assert.equal(refused.length, 0, String(refused[0]));
  assert.ok(online.meanRecordsPerJob < 2, `mean ${online.meanRecordsPerJob}`);
});

test("one-record calls right after 1000-record jobs: this api's own new jobs count as the records they hold, not as jobs of the last burst's size", async () => {
  const { online, prefix, conn } = dispatcher();
  const scoredKey = recordsScoredKey(prefix);
  // Large jobs take 200 ms each, so samples see work waiting and a rate is measured; one-record jobs are answered at once.
  const records = (job: PredictJob) => job.calls.reduce((n, c) => n + c.records!.length, 0);
  consumer(
    prefix,
    (call) => (void redis.client.incrby(scoredKey, call.records!.length), ok(call)),
    VERSION,
    (job) => (records(job) > 1 ? 200 : 0),
  );
  await ready(conn);
  const burstEnd = Date.now() + 1500;
  while (Date.now() < burstEnd) {
    await online.submit(
      MODEL,
      VERSION,
      Array.from({ length: 1000 }, () => record),
      5000,
    );
  }
  // A sample after the burst: nothing of it is waiting any more, and the mean is still its 1000.
  await new Promise((r) => setTimeout(r, 2 * ADMISSION_SAMPLE_INTERVAL_MS));
  assert.equal(online.meanRecordsPerJob, 1000);
  assert.ok(online.ratePerSecond !== undefined && online.ratePerSecond < 10_000, `rate ${online.ratePerSecond}`);
  // Each call is answered before the next: one record waits at a time. One job counted as 1000
  // records would be twice this timeout at the measured rate.
  const timeoutMs = (1000 * 1000) / online.ratePerSecond / 2;
  for (let i = 0; i < 10; i++) await online.submit(MODEL, VERSION, [record], timeoutMs);
});

test('Redis away: 503 at once', async () => {
  const { online, conn } = dispatcher();
  await ready(conn);
  conn.disconnect();
  await assert.rejects(online.submit(MODEL, VERSION, [record], 1000), UnavailableError);
});

test('a consumer fails a job whose data does not parse, for good (UnrecoverableError)', async () => {
  const { producer, prefix, conn } = dispatcher();
  let processed = 0;
  const connection = createRedis(redis.url, 'consumer', 'test-worker');
  const worker = createConsumer(predictQueue(MODEL, VERSION), async (): Promise<PredictOutcome> => (processed++, 'scored'), {
    connection,
    prefix,
    lockDurationMs: 10_000,
    stalledIntervalMs: 5000,
  });
  closers.push(async () => {
    await worker.close();
    connection.disconnect();
  });
  await ready(conn);
  const failed = new Promise<Error>((resolve) => worker.on('failed', (_job, err) => resolve(err)));
  // Bypasses the typed producer on purpose: what an older or newer api might have written.
  const bad: unknown = { reply_to: 'x', calls: 'not calls' };
  await producer.queue.add('predict', bad as PredictJob);
  const err = await failed;
  assert.ok(err instanceof UnrecoverableError);
  assert.match(err.message, /predict\.m\.1 job \S+ has bad data/);
  assert.equal(processed, 0);
});
