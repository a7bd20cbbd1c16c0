// A bulk job becomes visible only together with its queued work. An api SIGKILLed between the job
// record and its enqueue (held there by TEST_PAUSE_BEFORE_ENQUEUE_MS) leaves an invisible staging
// job whose keys expire within STAGING_TTL_SECONDS; a retry under the same Idempotency-Key resumes
// it (every record scored, exactly once) or, once it has expired, replaces it.
import { test, before, after } from 'node:test';
import assert from 'node:assert/strict';
import { startTestRedis, type TestRedis } from '../helpers/redis-server.ts';
import { startApi, startWorker, type ServiceProcess } from '../helpers/processes.ts';
import { request } from '../helpers/http.ts';
import { waitFor } from '../helpers/wait.ts';
import { generateFraudRecords } from '../../scripts/model/fraud-data.ts';

const PREFIX = 'atomic';
const RECORDS = 2000;
const STAGING_TTL_SECONDS = 3;
/**
 * The staging TTL of a job that a test resumes: its retry comes from an api started after the
 * kill, which on a loaded machine can take longer than STAGING_TTL_SECONDS to start.
 */
const RESUMED_TTL_SECONDS = 120;

let redis: TestRedis;
let worker: ServiceProcess;
let env: Record<string, string>;
const body = generateFraudRecords(9, RECORDS)
  .map((r, i) => JSON.stringify({ ...r, id: `a-${i}` }))
  .join('\n');

before(async () => {
  redis = await startTestRedis();
  env = {
    REDIS_URL: redis.url,
    QUEUE_PREFIX: PREFIX,
    BULK_CHUNK_SIZE: '500',
    STAGING_TTL_SECONDS: String(STAGING_TTL_SECONDS),
    OTEL_SDK_DISABLED: 'true',
  };
  worker = await startWorker(env);
});

after(async () => {
  await worker?.stop();
  await redis?.close();
});

/** A job of the species model (row-form chunks): records whose field is its one input. */
const speciesBody = Array.from({ length: RECORDS }, (_, i) =>
  JSON.stringify({ id: `a-${i}`, measurements: [4.5 + (i % 7) * 0.5, 2.5 + (i % 3) * 0.4, 1 + (i % 6), 0.1 + (i % 5) * 0.5] }),
).join('\n');

function submit(api: ServiceProcess, key: string, query = '', records = body) {
  return request(`${api.url}/jobs${query}`, {
    method: 'POST',
    headers: { 'content-type': 'application/x-ndjson', 'idempotency-key': key },
    body: records,
  });
}

/** Starts an api that stops between recording a job and queuing it, submits, and SIGKILLs it there. */
async function killBetweenRecordAndEnqueue(key: string, query = '', records = body, stagingTtlSeconds = STAGING_TTL_SECONDS): Promise<string> {
  const api = await startApi({ ...env, TEST_PAUSE_BEFORE_ENQUEUE_MS: '60000', STAGING_TTL_SECONDS: String(stagingTtlSeconds) });
  const pending = submit(api, key, query, records).catch(() => undefined);
  let jobKey: string;
  try {
    jobKey = await waitFor(
      async () => {
        // Held at the pause: recorded with its size (full chunks were queued as they were read,
        // so a staging job exists from its first chunk on), not yet wholly queued.
        for (const k of await redis.client.keys(`${PREFIX}:bulk:{*}`)) {
          const [staging, total] = await redis.client.hmget(k, 'staging', 'total');
          if (staging === '1' && total !== null) return k;
        }
        return undefined;
      },
      { timeoutMs: 20_000, what: 'a staging job, recorded whole' },
    );
    // Everything it staged expires within the staging TTL unless the job is promoted. A chunk
    // the worker scored meanwhile is gone already (PTTL -2): its input is deleted once its results are written.
    for (const k of await redis.client.keys(`${jobKey}*`)) {
      const ttl = await redis.client.pttl(k);
      assert.ok(ttl === -2 || (ttl > 0 && ttl <= stagingTtlSeconds * 1000), `${k} expires in ${ttl} ms`);
    }
  } finally {
    // Killed whatever happened: an api held at its pause would keep this file from ending.
    await api.stop('SIGKILL');
    await pending;
  }
  return /\{(.+)\}/.exec(jobKey)![1]!;
}

async function assertCompletedWithEveryRecord(api: ServiceProcess, jobId: string) {
  await waitFor(async () => (await request(`${api.url}/jobs/${jobId}`)).body.status === 'completed', {
    timeoutMs: 60_000,
    what: `job ${jobId} completed`,
  });
  const res = await fetch(`${api.url}/jobs/${jobId}/results`, { headers: { accept: 'application/x-ndjson' } });
  const lines = (await res.text()).trim().split('\n');
  assert.equal(lines.length, RECORDS);
  lines.forEach((line, i) => {
    const result = JSON.parse(line) as { index: number; id: string };
    assert.equal(result.index, i);
    assert.equal(result.id, `a-${i}`);
  });
}

test('an api killed between job record and enqueue: the job stays invisible, and a retry with the same key completes it', async () => {
  const jobId = await killBetweenRecordAndEnqueue('resume-me', '', body, RESUMED_TTL_SECONDS);
  const api = await startApi(env);
  try {
    assert.equal((await request(`${api.url}/jobs/${jobId}`)).status, 404, 'a staging job is not visible');
    const retry = await submit(api, 'resume-me');
    assert.equal(retry.status, 202, JSON.stringify(retry.body));
    assert.equal(retry.body.job_id, jobId, 'the staged job is resumed, not made again');
    assert.equal(retry.headers.get('idempotent-replayed'), 'true');
    await assertCompletedWithEveryRecord(api, jobId);
    // Promoted: the job now lives for RESULT_TTL_SECONDS, not the staging TTL.
    assert.ok((await redis.client.pttl(`${PREFIX}:bulk:{${jobId}}`)) > RESUMED_TTL_SECONDS * 1000);
  } finally {
    await api.stop();
  }
});

test('a staging job left to expire is gone with its chunks, and a retry with the same key makes a new job', async () => {
  const staleId = await killBetweenRecordAndEnqueue('replace-me');
  await waitFor(async () => (await redis.client.keys(`${PREFIX}:bulk:{${staleId}}*`)).length === 0, {
    timeoutMs: (STAGING_TTL_SECONDS + 10) * 1000,
    what: 'the staging job and its chunks to expire',
  });
  const api = await startApi(env);
  try {
    const retry = await submit(api, 'replace-me');
    assert.equal(retry.status, 202, JSON.stringify(retry.body));
    assert.notEqual(retry.body.job_id, staleId);
    await assertCompletedWithEveryRecord(api, retry.body.job_id);
    const again = await submit(api, 'replace-me');
    assert.equal(again.body.job_id, retry.body.job_id, 'the key now names the new job');
  } finally {
    await api.stop();
  }
});

test('a species job killed between record and enqueue is resumed with its model, pin and row encoding', async () => {
  const jobId = await killBetweenRecordAndEnqueue('resume-species', '?model=species&version=1', speciesBody, RESUMED_TTL_SECONDS);
  assert.deepEqual(await redis.client.hmget(`${PREFIX}:bulk:{${jobId}}`, 'model_name', 'model_version_number', 'encoding'), ['species', '1', 'rows']);
  const api = await startApi(env);
  try {
    const retry = await submit(api, 'resume-species', '?model=species&version=1', speciesBody);
    assert.equal(retry.status, 202, JSON.stringify(retry.body));
    assert.equal(retry.body.job_id, jobId, 'the staged job is resumed, not made again');
    await assertCompletedWithEveryRecord(api, jobId);
    const status = (await request(`${api.url}/jobs/${jobId}`)).body;
    assert.equal(status.model_name, 'species');
    assert.equal(status.model_version_number, 1);
    assert.deepEqual(Object.values(status.scored_by), [RECORDS], 'every record scored once, by the pinned version');
    const page = (await request(`${api.url}/jobs/${jobId}/results?limit=3`)).body;
    for (const result of page.results) assert.ok(['setosa', 'versicolor', 'virginica'].includes(result.label), JSON.stringify(result));
  } finally {
    await api.stop();
  }
});
