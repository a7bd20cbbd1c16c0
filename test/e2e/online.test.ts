// The online half of the contract, against a real Redis and real api and worker processes.
import { after, before, describe, test } from 'node:test';
import assert from 'node:assert/strict';
import { Queue } from 'bullmq';
import { startTestRedis, type TestRedis } from '../helpers/redis-server.ts';
import { startApi, startWorker, type ServiceProcess } from '../helpers/processes.ts';
import { postJson, readMetric, request } from '../helpers/http.ts';
import { rawExchange } from '../helpers/raw-http.ts';
import { waitFor } from '../helpers/wait.ts';
import { generateFraudRecords } from '../../scripts/model/fraud-data.ts';
import { predictQueueName } from '../../src/shared/queues.ts';

const FRAUD_QUEUE = predictQueueName('fraud', 1);

const PREFIX = 'e2e-online';
const record = {
  transaction_amount: 594.4,
  merchant_category: 'travel',
  card_present: false,
  hour_of_day: 0,
  days_since_last_transaction: 17.9457,
};

let redis: TestRedis;
let queue: Queue;
const started: ServiceProcess[] = [];

async function api(env: Record<string, string> = {}) {
  const p = await startApi({ REDIS_URL: redis.url, QUEUE_PREFIX: PREFIX, ...env });
  started.push(p);
  return p;
}
async function worker(env: Record<string, string> = {}) {
  const p = await startWorker({ REDIS_URL: redis.url, QUEUE_PREFIX: PREFIX, ...env });
  started.push(p);
  return p;
}
/** Jobs ever added to the online queue (BullMQ's id counter): proves nothing was enqueued. */
async function jobsEverAdded(): Promise<number> {
  return Number((await redis.client.get(`${PREFIX}:${FRAUD_QUEUE}:id`)) ?? 0);
}

before(async () => {
  redis = await startTestRedis();
  queue = new Queue(FRAUD_QUEUE, { connection: { url: redis.url }, prefix: PREFIX });
});

after(async () => {
  await Promise.all(started.map((p) => p.stop('SIGKILL')));
  await queue.close();
  await redis.close();
});

describe('with a worker running', () => {
  let a: ServiceProcess;
  let w: ServiceProcess;
  before(async () => {
    [a, w] = await Promise.all([api(), worker()]);
  });
  after(async () => {
    await Promise.all([a.stop(), w.stop()]);
  });

  test('POST /predict answers the contract fields from the model', async () => {
    const res = await postJson(`${a.url}/predict`, record);
    assert.equal(res.status, 200, JSON.stringify(res.body));
    assert.deepEqual(Object.keys(res.body).sort(), ['decision', 'fraud_probability', 'model_version']);
    assert.ok(res.body.fraud_probability > 0 && res.body.fraud_probability < 1);
    assert.ok(['approve', 'review', 'decline'].includes(res.body.decision));
    assert.match(res.body.model_version, /^fraud-/);
    assert.match(res.headers.get('server-timing') ?? '', /queue;dur=.*inference;dur=/);
  });

  test('an unknown merchant category is scored, not rejected', async () => {
    const res = await postJson(`${a.url}/predict`, { ...record, merchant_category: 'spaceport' });
    assert.equal(res.status, 200);
  });

  test('a batch answers in input order with the same scores as single calls', async () => {
    const records = generateFraudRecords(7, 40);
    const batch = await postJson(`${a.url}/predict/batch`, { records });
    assert.equal(batch.status, 200, JSON.stringify(batch.body));
    assert.equal(batch.body.results.length, records.length);
    assert.equal(typeof batch.body.latency_ms, 'number');
    const singles = await Promise.all(records.map((r) => postJson(`${a.url}/predict`, r)));
    singles.forEach((s, i) => {
      assert.equal(s.status, 200);
      assert.equal(s.body.fraud_probability, batch.body.results[i].fraud_probability, `record ${i}`);
      assert.equal(s.body.decision, batch.body.results[i].decision);
    });
    // Different records really do get different scores, so order is observable.
    assert.ok(new Set(batch.body.results.map((r: { fraud_probability: number }) => r.fraud_probability)).size > 10);
  });

  test('concurrent calls share one session.run', async () => {
    const runsBefore = await readMetric(w.url, 'scoring_batch_records_count');
    const recordsBefore = await readMetric(w.url, 'scoring_batch_records_sum');
    const records = generateFraudRecords(11, 64);
    const responses = await Promise.all(records.map((r) => postJson(`${a.url}/predict`, r)));
    assert.ok(responses.every((r) => r.status === 200));
    const runs = (await readMetric(w.url, 'scoring_batch_records_count')) - runsBefore;
    const scored = (await readMetric(w.url, 'scoring_batch_records_sum')) - recordsBefore;
    assert.equal(scored, 64);
    assert.ok(runs < 64 / 4, `64 concurrent calls took ${runs} session.run calls`);
  });

  const bad: [string, unknown, RegExp][] = [
    ['a negative amount', { ...record, transaction_amount: -3 }, /^transaction_amount$/],
    ['an infinite-looking amount', { ...record, transaction_amount: '1e400' }, /^transaction_amount$/],
    ['an empty category', { ...record, merchant_category: '' }, /^merchant_category$/],
    ['a 65-character category', { ...record, merchant_category: 'x'.repeat(65) }, /^merchant_category$/],
    ['a string for card_present', { ...record, card_present: 'yes' }, /^card_present$/],
    ['hour 24', { ...record, hour_of_day: 24 }, /^hour_of_day$/],
    ['a fractional hour', { ...record, hour_of_day: 1.5 }, /^hour_of_day$/],
    ['a negative gap', { ...record, days_since_last_transaction: -0.1 }, /^days_since_last_transaction$/],
    ['a missing field', { ...record, hour_of_day: undefined }, /^hour_of_day$/],
    ['an unknown field', { ...record, country: 'FR' }, /^country$/],
    ['an id (bulk only)', { ...record, id: 'a' }, /^id$/],
  ];
  for (const [what, body, path] of bad) {
    test(`${what} is a 400 validation_error naming the field, and nothing is enqueued`, async () => {
      const before = await jobsEverAdded();
      const res = await postJson(`${a.url}/predict`, body);
      assert.equal(res.status, 400);
      assert.equal(res.body.error.code, 'validation_error');
      assert.ok(
        res.body.error.details.some((d: { path: string }) => path.test(d.path)),
        JSON.stringify(res.body),
      );
      assert.equal(typeof res.body.request_id, 'string');
      assert.equal(await jobsEverAdded(), before);
    });
  }

  test('a batch names the bad record by its index', async () => {
    const records = generateFraudRecords(3, 20);
    (records[17] as Record<string, unknown>).hour_of_day = 99;
    const before = await jobsEverAdded();
    const res = await postJson(`${a.url}/predict/batch`, { records });
    assert.equal(res.status, 400);
    assert.ok(res.body.error.details.some((d: { path: string }) => d.path === 'records.17.hour_of_day'));
    assert.equal(await jobsEverAdded(), before);
  });

  test('an empty batch and one past MAX_BATCH_RECORDS are refused', async () => {
    const before = await jobsEverAdded();
    assert.equal((await postJson(`${a.url}/predict/batch`, { records: [] })).status, 400);
    const tooMany = await postJson(`${a.url}/predict/batch`, { records: generateFraudRecords(1, 1001) });
    assert.equal(tooMany.status, 400);
    assert.equal(tooMany.body.error.details[0].path, 'records');
    assert.equal(await jobsEverAdded(), before);
  });

  test('malformed JSON, a wrong content type and an over-size body each get their code', async () => {
    const before = await jobsEverAdded();
    const malformed = await request(`${a.url}/predict`, {
      method: 'POST',
      headers: { 'content-type': 'application/json' },
      body: '{"transaction_amount": 1,',
    });
    assert.equal(malformed.status, 400);
    assert.equal(malformed.body.error.code, 'validation_error');
    const text = await request(`${a.url}/predict`, { method: 'POST', headers: { 'content-type': 'text/plain' }, body: 'hello' });
    assert.equal(text.status, 415);
    assert.equal(text.body.error.code, 'unsupported_media_type');
    // Refused from its Content-Length alone, so only the headers are sent. Fastify answers a body
    // error with Connection: close and closes; a client still uploading a real 2 MB body races
    // that close, and fetch then fails with EPIPE instead of reading the 413.
    const huge = await rawExchange(a.port, (socket) => {
      socket.write(`POST /predict/batch HTTP/1.1\r\nhost: 127.0.0.1\r\ncontent-type: application/json\r\ncontent-length: ${2 * 1_048_576}\r\n\r\n`);
    });
    assert.equal(huge.status, 413);
    const hugeBody = JSON.parse(huge.body) as { error: { code: string } };
    assert.equal(hugeBody.error.code, 'payload_too_large');
    for (const body of [malformed.body, text.body, hugeBody]) assert.doesNotMatch(JSON.stringify(body), /at .*\.ts:\d+/);
    assert.equal(await jobsEverAdded(), before);
  });

  test('a bad timeout_ms is refused', async () => {
    const res = await postJson(`${a.url}/predict?timeout_ms=40000`, record);
    assert.equal(res.status, 400);
    assert.equal(res.body.error.details[0].path, 'timeout_ms');
  });

  test('/ready counts the live worker and its model version', async () => {
    const res = await request(`${a.url}/ready`);
    assert.equal(res.status, 200);
    assert.equal(res.body.workers, 1);
    assert.match(res.body.model_version, /^fraud-/);
  });

  test('/openapi.json describes the endpoints from the same schemas', async () => {
    const res = await request(`${a.url}/openapi.json`);
    assert.equal(res.status, 200);
    assert.ok(res.body.paths['/predict'].post);
    assert.ok(res.body.paths['/predict/batch'].post);
    const schemas = JSON.stringify(res.body.components.schemas);
    assert.match(schemas, /hour_of_day/);
    assert.match(schemas, /additionalProperties/);
  });
});

describe('with no worker running', () => {
  let a: ServiceProcess;
  before(async () => {
    a = await api();
  });
  after(async () => {
    await a.stop();
  });

  test('a call gets 503 model_unavailable at once, and nothing is enqueued', async () => {
    const before = await jobsEverAdded();
    const res = await postJson(`${a.url}/predict?timeout_ms=5000`, record);
    assert.equal(res.status, 503, JSON.stringify(res.body));
    assert.equal(res.body.error.code, 'model_unavailable');
    assert.ok(res.ms < 1000, `answered after ${res.ms} ms, not at the timeout`);
    assert.equal(await jobsEverAdded(), before);
  });
});

// A worker that holds fraud but takes nothing (SIGSTOP; its heartbeat stays live for up to 15 s):
// calls are routed to fraud's queue and wait there.
describe('with a frozen worker', () => {
  let a: ServiceProcess;
  let w: ServiceProcess;
  before(async () => {
    [a, w] = await Promise.all([api({ ONLINE_MAX_WAITING: '3' }), worker()]);
    await queue.drain();
  });
  after(async () => {
    w.proc.kill('SIGCONT');
    await Promise.all([a.stop(), w.stop()]);
  });

  test('a call gets 504 within its timeout, and the expired job is never scored', async () => {
    assert.ok(w.proc.kill('SIGSTOP'));
    const res = await postJson(`${a.url}/predict?timeout_ms=300`, record);
    assert.equal(res.status, 504);
    assert.equal(res.body.error.code, 'timeout');
    assert.ok(res.ms >= 290 && res.ms < 2000, `answered after ${res.ms} ms`);

    w.proc.kill('SIGCONT');
    await waitFor(async () => (await queue.getWaitingCount()) === 0 && (await queue.getActiveCount()) === 0, { what: 'queue drained' });
    await waitFor(async () => (await readMetric(w.url, 'scoring_online_calls_total', { outcome: 'expired' })) >= 1, {
      what: 'expired calls counted',
    });
    assert.equal(await readMetric(w.url, 'scoring_records_scored_total'), 0);
  });

  test('past the queue bound a call gets 429 with Retry-After at once', async () => {
    // An api of its own: the one of the test before measured its frozen worker scoring nothing,
    // and would refuse by predicted wait before the bound is reached.
    const a = await api({ ONLINE_MAX_WAITING: '3' });
    assert.ok(w.proc.kill('SIGSTOP'));
    // Each call times out and leaves its job waiting: the backlog grows past ONLINE_MAX_WAITING=3.
    const res = await waitFor(
      async () => {
        const r = await postJson(`${a.url}/predict?timeout_ms=20`, record);
        assert.ok(r.status === 504 || r.status === 429, `status ${r.status}`);
        return r.status === 429 ? r : undefined;
      },
      { what: '429 once the depth sample sees the backlog' },
    );
    // The hard cap or, once the frozen worker has scored nothing for a second while records
    // wait, the predicted wait refuses first (on a loaded machine either can): a backlog either way.
    assert.ok((await queue.getWaitingCount()) >= 1);
    assert.equal(res.body.error.code, 'overloaded');
    assert.ok(Number(res.headers.get('retry-after')) >= 1, `Retry-After ${res.headers.get('retry-after')}`);
    assert.ok(res.ms < 200, `429 took ${res.ms} ms`);
    await queue.drain();
    await a.stop();
  });
});

describe('with API_KEYS set', () => {
  let a: ServiceProcess;
  before(async () => {
    a = await api({ API_KEYS: 'key-one,key-two' });
  });
  after(async () => {
    await a.stop();
  });

  test('a call without a valid bearer key is 401; health, ready, metrics and the docs stay open', async () => {
    const none = await postJson(`${a.url}/predict`, record);
    assert.equal(none.status, 401);
    assert.equal(none.body.error.code, 'unauthorized');
    assert.equal((await postJson(`${a.url}/predict`, record, { authorization: 'Bearer nope' })).status, 401);
    assert.equal((await request(`${a.url}/jobs`)).status, 401);
    // The docs hold no secrets: open without a key unless DOCS_PUBLIC=false.
    assert.equal((await request(`${a.url}/openapi.json`)).status, 200);
    const withKey = await postJson(`${a.url}/predict?timeout_ms=50`, record, { authorization: 'Bearer key-two' });
    assert.notEqual(withKey.status, 401);
    for (const path of ['/health', '/ready', '/metrics']) assert.equal((await request(a.url + path)).status, 200, path);
  });
});

describe('when Redis goes away', () => {
  test('the api answers 503 at once, and recovers when Redis returns', async () => {
    const [a, w] = await Promise.all([api(), worker()]);
    try {
      assert.equal((await postJson(`${a.url}/predict`, record)).status, 200);
      await redis.stop();
      const down = await postJson(`${a.url}/predict`, record);
      assert.equal(down.status, 503);
      assert.equal(down.body.error.code, 'unavailable');
      assert.ok(down.ms < 500, `503 took ${down.ms} ms`);
      assert.equal((await request(`${a.url}/ready`)).status, 503);
      assert.equal((await request(`${a.url}/health`)).status, 200);

      await redis.start();
      const back = await waitFor(
        async () => {
          const r = await postJson(`${a.url}/predict?timeout_ms=1000`, record);
          return r.status === 200 ? r : undefined;
        },
        { timeoutMs: 20_000, what: 'a 200 after Redis returned' },
      );
      assert.ok(back.body.fraud_probability > 0);
    } finally {
      await Promise.all([a.stop(), w.stop()]);
    }
  });
});

describe('on SIGTERM', () => {
  test('the api answers the calls in flight, then exits 0', async () => {
    await queue.drain();
    const [a, w] = await Promise.all([api(), worker()]);
    // The worker frozen: the calls wait in the queue, in flight, when the signal lands.
    assert.ok(w.proc.kill('SIGSTOP'));
    const inFlight = generateFraudRecords(5, 20).map((r) => postJson(`${a.url}/predict?timeout_ms=15000`, r));
    // Signal only once the api holds all 20 calls, or the race is the client's, not the api's.
    const callsWaiting = async () => (await queue.getWaiting()).reduce((n, job) => n + job.data.calls.length, 0);
    await waitFor(async () => (await callsWaiting()) === 20, { what: 'all 20 calls enqueued' });
    const exit = a.stop('SIGTERM');
    w.proc.kill('SIGCONT');
    try {
      const responses = await Promise.all(inFlight);
      assert.deepEqual(
        responses.map((r) => r.status),
        Array(20).fill(200),
      );
      assert.equal(await exit, 0);
    } finally {
      await w.stop();
    }
  });
});
