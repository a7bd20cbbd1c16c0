// Online calls under faults, with real api and worker processes: a model that throws (500
// model_error at once, the worker stays up) and a frozen worker (fast 429s with Retry-After).
import { after, before, describe, test } from 'node:test';
import assert from 'node:assert/strict';
import { rm } from 'node:fs/promises';
import { startTestRedis, type TestRedis } from '../helpers/redis-server.ts';
import { startApi, startWorker, type ServiceProcess } from '../helpers/processes.ts';
import { postJson, readMetric, type JsonResponse } from '../helpers/http.ts';
import { waitFor } from '../helpers/wait.ts';
import { NAN_AMOUNT, SAFE_PROBABILITY, THROWING_AMOUNT, writeFaultyModel } from '../helpers/faulty-model.ts';

const record = {
  transaction_amount: 12.5,
  merchant_category: 'travel',
  card_present: false,
  hour_of_day: 3,
  days_since_last_transaction: 2,
};

let redis: TestRedis;
const started: ServiceProcess[] = [];

before(async () => {
  redis = await startTestRedis();
});
after(async () => {
  await Promise.all(started.map((p) => p.stop('SIGKILL')));
  await redis.close();
});

describe('a model that fails', () => {
  const TIMEOUT_MS = 20_000;
  let a: ServiceProcess;
  let w: ServiceProcess;
  let modelDir: string;
  before(async () => {
    modelDir = await writeFaultyModel('models/fraud/1');
    const env = { REDIS_URL: redis.url, QUEUE_PREFIX: 'faults-model' };
    [a, w] = await Promise.all([startApi(env), startWorker({ ...env, MODEL_REPOSITORY: modelDir })]);
    started.push(a, w);
  });
  after(async () => {
    await Promise.all([a.stop(), w.stop()]);
    await rm(modelDir, { recursive: true, force: true });
  });

  test('a batch whose inference throws is answered at once with 500 model_error, and the worker stays up', async () => {
    const res = await postJson(`${a.url}/predict/batch?timeout_ms=${TIMEOUT_MS}`, {
      records: [record, { ...record, transaction_amount: THROWING_AMOUNT }],
    });
    assert.equal(res.status, 500, JSON.stringify(res.body));
    assert.equal(res.body.error.code, 'model_error');
    assert.match(res.body.error.message, /^model fraud version fraud-faulty-1\.0\.0\+\w+ failed: inference threw on a batch of 2 records$/);
    assert.doesNotMatch(res.body.error.message, /5000/, 'no input value quoted back (a batch mixes callers)');
    // pino writes asynchronously: the log line may land just after the reply.
    await waitFor(() => /"msg":"model failed on an online batch"/.test(w.output()), { what: 'the worker logs the failure' });
    assert.doesNotMatch(res.body.error.message, /\n|\bat \S+:\d+/, 'no stack in the message');
    assert.ok(res.ms < TIMEOUT_MS / 2, `answered after ${res.ms} ms, not at the ${TIMEOUT_MS} ms timeout`);

    const next = await postJson(`${a.url}/predict`, record);
    assert.equal(next.status, 200, JSON.stringify(next.body));
    assert.equal(next.body.fraud_probability, SAFE_PROBABILITY);
    assert.ok((await readMetric(w.url, 'scoring_model_errors_total', { kind: 'online' })) >= 1);
  });

  test('a record with no finite output fails only its own call', async () => {
    const [bad, good] = await Promise.all([
      postJson(`${a.url}/predict?timeout_ms=${TIMEOUT_MS}`, { ...record, transaction_amount: NAN_AMOUNT }),
      postJson(`${a.url}/predict?timeout_ms=${TIMEOUT_MS}`, record),
    ]);
    assert.equal(bad.status, 500, JSON.stringify(bad.body));
    assert.equal(bad.body.error.code, 'model_error');
    assert.match(bad.body.error.message, /no probability for record 0/);
    assert.equal(good.status, 200, JSON.stringify(good.body));
    assert.ok((await readMetric(w.url, 'scoring_model_errors_total', { kind: 'record' })) >= 1);
  });
});

describe('a frozen worker', () => {
  const TIMEOUT_MS = 1000;
  let a: ServiceProcess;
  let w: ServiceProcess;
  before(async () => {
    const env = { REDIS_URL: redis.url, QUEUE_PREFIX: 'faults-frozen' };
    [a, w] = await Promise.all([startApi(env), startWorker(env)]);
    started.push(a, w);
  });
  after(async () => {
    w.proc.kill('SIGCONT');
    await Promise.all([a.stop(), w.stop()]);
  });

  /** `clients` callers, each calling again as soon as it is answered, until `enough` says so. */
  async function load(clients: number, enough: (responses: JsonResponse[]) => boolean): Promise<JsonResponse[]> {
    const responses: JsonResponse[] = [];
    await Promise.all(
      Array.from({ length: clients }, async () => {
        while (!enough(responses)) responses.push(await postJson(`${a.url}/predict?timeout_ms=${TIMEOUT_MS}`, record));
      }),
    );
    return responses;
  }

  test('callers past what it can score get 429 at once with Retry-After, and it recovers', async () => {
    // Admission measures the rate of scoring while work waits: warm it up with a steady load.
    const warm = await load(16, (rs) => rs.length >= 400);
    assert.ok(warm.every((r) => r.status === 200));

    assert.ok(w.proc.kill('SIGSTOP'));
    const deadline = Date.now() + 20_000;
    const frozen = await load(64, (rs) => rs.filter((r) => r.status === 429).length >= 200 || Date.now() > deadline);
    const statuses = JSON.stringify(
      Object.groupBy(frozen, (r) => r.status),
      (k, v) => (Array.isArray(v) ? v.length : v),
    );
    const tooMany = frozen.filter((r) => r.status === 429);
    assert.ok(tooMany.length >= 200, `statuses while frozen: ${statuses}`);
    for (const r of tooMany) {
      assert.equal(r.body.error.code, 'overloaded');
      assert.ok(Number(r.headers.get('retry-after')) >= 1);
      assert.ok(r.ms < TIMEOUT_MS / 2, `a 429 took ${r.ms} ms: it must not wait for the timeout`);
    }
    assert.ok(
      frozen.every((r) => r.status === 429 || r.status === 504),
      `statuses while frozen: ${statuses}`,
    );

    w.proc.kill('SIGCONT');
    await waitFor(async () => (await postJson(`${a.url}/predict?timeout_ms=${TIMEOUT_MS}`, record)).status === 200, {
      timeoutMs: 20_000,
      what: 'a 200 after the worker thawed',
    });
  });
});
