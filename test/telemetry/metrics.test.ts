// Both /metrics after known traffic: every metric of the issue, with the counts that traffic
// implies. Real api and worker processes, a private Redis.
import { after, before, test } from 'node:test';
import assert from 'node:assert/strict';
import { Queue } from 'bullmq';
import { startTestRedis, type TestRedis } from '../helpers/redis-server.ts';
import { startApi, startWorker, type ServiceProcess } from '../helpers/processes.ts';
import { postJson, readMetric, request } from '../helpers/http.ts';
import { waitFor } from '../helpers/wait.ts';
import { generateFraudRecords } from '../../scripts/model/fraud-data.ts';
import { QUEUES, predictQueue, predictQueueName } from '../../src/shared/queues.ts';
import { recordsScoredKey } from '../../src/shared/keys.ts';

/** fraud/1's online queue in Redis (its one shard), and its metrics label (the version's queue, shards together). */
const FRAUD_QUEUE = predictQueueName('fraud', 1);
const FRAUD_LABEL = predictQueue('fraud', 1).name;

const PREFIX = 'telemetry-metrics';
let redis: TestRedis;
let a: ServiceProcess;
let w: ServiceProcess | undefined;
const env = () => ({ REDIS_URL: redis.url, QUEUE_PREFIX: PREFIX, BULK_CHUNK_SIZE: '10' });

before(async () => {
  redis = await startTestRedis();
  a = await startApi(env());
  await waitFor(async () => (await request(`${a.url}/ready`)).status === 200, { what: 'api ready' });
});

after(async () => {
  await Promise.all([a?.stop(), w?.stop()]);
  await redis.close();
});

test('metrics on both ports follow the traffic', async () => {
  // --- No worker yet: a bulk backlog builds, and the gauges see it; an online call is refused at once. ---
  const bulk = await postJson(`${a.url}/jobs`, { records: generateFraudRecords(31, 25) });
  assert.equal(bulk.status, 202, JSON.stringify(bulk.body));
  const unheld = await postJson(`${a.url}/predict?timeout_ms=50`, generateFraudRecords(32, 1)[0]);
  assert.equal(unheld.status, 503);
  assert.equal(unheld.body.error.code, 'model_unavailable');
  // A job no worker can read fails at once (UnrecoverableError): the failed counter.
  const queue = new Queue(FRAUD_QUEUE, { connection: { url: redis.url }, prefix: PREFIX });
  await queue.add(QUEUES.predict.jobName, { not: 'a predict job' }, QUEUES.predict.jobOptions);
  await queue.close();

  // Bulk chunks are queued with fair-share priorities: they wait in BullMQ's prioritized state.
  await waitFor(async () => (await readMetric(a.url, 'scoring_queue_jobs', { queue: QUEUES.bulk.name, state: 'prioritized' })) === 3, {
    what: 'three waiting bulk chunks (25 records in chunks of 10)',
  });
  assert.equal(await readMetric(a.url, 'scoring_bulk_records_pending'), 25);
  // Nothing scored yet: the drain time assumes one record a second rather than reading zero.
  assert.ok((await readMetric(a.url, 'scoring_backlog_drain_seconds')) >= 25);

  // --- A worker drains it, then online traffic. ---
  w = await startWorker(env());
  await waitFor(async () => (await request(`${a.url}/jobs/${bulk.body.job_id}`)).body.status === 'completed', {
    timeoutMs: 20_000,
    what: 'the bulk job to complete',
  });
  // The online queue of each version a live worker holds is reported, by its name.
  await waitFor(async () => (await fetch(`${a.url}/metrics`).then((r) => r.text())).includes(`queue="${FRAUD_LABEL}"`), {
    what: `the api to report ${FRAUD_LABEL}`,
  });
  assert.equal(await readMetric(a.url, 'scoring_queue_jobs', { queue: FRAUD_LABEL, state: 'delayed' }), 0);
  // A call the frozen worker cannot take in time: 504, and the worker counts it expired once thawed.
  assert.ok(w.proc.kill('SIGSTOP'));
  const expired = await postJson(`${a.url}/predict?timeout_ms=50`, generateFraudRecords(32, 1)[0]);
  w.proc.kill('SIGCONT');
  assert.equal(expired.status, 504);
  const singles = generateFraudRecords(33, 40);
  const responses = await Promise.all(singles.map((r) => postJson(`${a.url}/predict`, r)));
  assert.deepEqual(new Set(responses.map((r) => r.status)), new Set([200]));
  const batch = await postJson(`${a.url}/predict/batch`, { records: generateFraudRecords(34, 10) });
  assert.equal(batch.status, 200);
  assert.equal((await postJson(`${a.url}/predict`, { transaction_amount: -1 })).status, 400);

  // --- Worker: records scored = records sent; inference count / batch count = mean batch size. ---
  const m = (name: string, labels: Record<string, string> = {}) => readMetric(w!.url, name, labels);
  await waitFor(async () => (await m('scoring_jobs_total', { queue: FRAUD_LABEL, outcome: 'failed' })) === 1, {
    what: 'the bad job counted failed',
  });
  assert.equal(await m('scoring_records_scored_total', { kind: 'online' }), 50);
  assert.equal(await m('scoring_records_scored_total', { kind: 'bulk' }), 25);
  assert.equal(await m('scoring_online_calls_total', { outcome: 'scored' }), 41);
  assert.equal(await m('scoring_online_calls_total', { outcome: 'scored', model_name: 'fraud', model_version: '1' }), 41);
  assert.equal(await m('scoring_online_calls_total', { outcome: 'expired' }), 1);
  assert.equal(await m('scoring_jobs_total', { queue: FRAUD_LABEL, outcome: 'expired' }), 1);
  assert.equal(await m('scoring_jobs_total', { queue: QUEUES.bulk.name, outcome: 'completed' }), 3);
  const predictJobs = await m('scoring_jobs_total', { queue: FRAUD_LABEL, outcome: 'completed' });
  assert.ok(predictJobs >= 2 && predictJobs <= 41, `${predictJobs} predict jobs for 41 calls`);
  // Queue wait and batch wait are timed for each job read: the completed ones and the expired one
  // (the unreadable one is refused before).
  assert.equal(await m('scoring_queue_wait_seconds_count'), predictJobs + 1);
  assert.equal(await m('scoring_batch_wait_seconds_count'), predictJobs + 1);

  const runs = await m('scoring_batch_records_count');
  const recordsRun = await m('scoring_batch_records_sum');
  assert.equal(recordsRun, 75, 'every record scored went through one session.run');
  assert.equal(await m('scoring_inference_duration_seconds_count'), runs, 'one inference duration per run');
  assert.ok(runs < 41, `${runs} session.runs for 75 records: calls were batched`);
  assert.ok((await m('scoring_inference_duration_seconds_bucket', { le: '0.001' })) >= 0);

  // --- Api: HTTP durations by route and status, with 1 ms buckets. ---
  const http = (labels: Record<string, string>) => readMetric(a.url, 'http_server_request_duration_seconds_count', labels);
  assert.equal(await http({ http_route: '/predict', http_response_status_code: '200' }), 40);
  assert.equal(await http({ http_route: '/predict', http_response_status_code: '504' }), 1);
  assert.equal(await http({ http_route: '/predict', http_response_status_code: '503' }), 1);
  assert.equal(await http({ http_route: '/predict', http_response_status_code: '400' }), 1);
  assert.equal(await http({ http_route: '/predict/batch', http_response_status_code: '200' }), 1);
  assert.equal(await http({ http_route: '/jobs', http_response_status_code: '202' }), 1);
  const text = await (await fetch(`${a.url}/metrics`)).text();
  assert.match(text, /http_server_request_duration_seconds_bucket\{[^}]*http_route="\/predict"[^}]*le="0.001"\}/);
  assert.doesNotMatch(text, /http_route="\/metrics"/, 'scrapes are not counted as traffic');

  // --- Drained: the backlog gauges fall to zero and the rate shows the work done. ---
  await waitFor(async () => (await readMetric(a.url, 'scoring_bulk_records_pending')) === 0, { what: 'bulk pending 0' });
  await waitFor(async () => (await readMetric(a.url, 'scoring_records_scored_rate')) > 0, { what: 'a scoring rate' });
  assert.equal(await readMetric(a.url, 'scoring_backlog_drain_seconds'), 0);
  assert.equal(Number(await redis.client.get(recordsScoredKey(PREFIX))), 75);
});

test('OTEL_SDK_DISABLED=true turns telemetry off and the api still serves', async () => {
  const off = await startApi({ ...env(), OTEL_SDK_DISABLED: 'true' });
  try {
    const res = await request(`${off.url}/metrics`);
    assert.equal(res.status, 200);
    assert.doesNotMatch(String(res.body), /http_server_request_duration|scoring_/);
    const p = await postJson(`${off.url}/predict`, generateFraudRecords(35, 1)[0]);
    assert.equal(p.status, 200);
  } finally {
    await off.stop();
  }
});
