// The jobs routes in-process (buildApp + inject, real Redis, no worker): validation, content
// types, auth, the 404/409 paths, cancel, and every results format. A chunk is "scored" here by
// the store's own claim and commit, with known probabilities, so formats are checked exactly.
import { test, describe } from 'node:test';
import assert from 'node:assert/strict';
import type { InjectOptions } from 'fastify';
import { decodeChunk, encodeResults } from '../../src/shared/bulk-chunk.ts';
import { createBulkStore } from '../../src/shared/bulk-store.ts';
import { DECISIONS } from '../../src/shared/schemas/prediction.ts';
import { JobStatusSchema, ResultsPageSchema, type JobResult } from '../../src/shared/schemas/bulk-job.ts';
import { preferredResultFormat } from '../../src/api/bulk/results-format.ts';
import { buildTestApp, type Teardown } from '../helpers/app.ts';
import { waitFor } from '../helpers/wait.ts';

const KEY_A = 'key-a-0123456789';
const KEY_B = 'key-b-0123456789';
const CHUNK = 4;
const BODY_LIMIT = 20_000;

const OPTIONS = { API_KEYS: `${KEY_A},${KEY_B}`, BULK_CHUNK_SIZE: String(CHUNK), JOB_BODY_LIMIT_BYTES: String(BODY_LIMIT) };

const auth = (key = KEY_A) => ({ authorization: `Bearer ${key}` });

function record(i: number, id?: string) {
  return {
    transaction_amount: 10 + i,
    merchant_category: i % 2 ? 'grocery' : 'travel',
    card_present: i % 3 === 0,
    hour_of_day: i % 24,
    days_since_last_transaction: i / 4,
    ...(id === undefined ? {} : { id }),
  };
}

function ndjson(records: readonly object[]): string {
  return records.map((r) => JSON.stringify(r)).join('\n') + '\n';
}

/** An app of the test's own (API_KEYS set), and the calls the tests make on it. */
async function jobsApp(t: Teardown) {
  const ctx = await buildTestApp(t, OPTIONS);
  const store = createBulkStore(ctx.redis.client, ctx.redis.prefix);

  /** inject() as KEY_A unless `key` says otherwise (null: no Authorization header). */
  const inject = (opts: InjectOptions & { key?: string | null }) => {
    const { key = KEY_A, headers, ...rest } = opts;
    return ctx.app.inject({ ...rest, headers: { ...(key === null ? {} : auth(key)), ...headers } });
  };

  const submit = async (records: readonly object[], key = KEY_A) => {
    const res = await inject({ method: 'POST', url: '/jobs', key, headers: { 'content-type': 'application/x-ndjson' }, payload: ndjson(records) });
    assert.equal(res.statusCode, 202, res.body);
    return res.json<{ job_id: string }>().job_id;
  };

  /** What a worker would write: results with known probabilities, through the store's claim and commit. */
  const scoreAll = async (jobId: string): Promise<JobResult[]> => {
    const job = (await store.readJob(jobId))!;
    const expected: JobResult[] = [];
    for (let chunk = 0; chunk < job.chunks; chunk++) {
      const claim = await store.claimChunk(jobId, chunk, Date.now());
      assert.equal(claim.outcome, 'claimed');
      const columns = decodeChunk(claim.outcome === 'claimed' ? claim.input : Buffer.alloc(0));
      const probabilities = Float32Array.from({ length: columns.length }, (_, row) => (chunk * CHUNK + row + 1) / 97);
      const decisions = Uint8Array.from({ length: columns.length }, (_, row) => (chunk + row) % DECISIONS.length);
      const results = encodeResults({ length: columns.length, probabilities, decisions, ids: columns.ids });
      await store.commitChunk(jobId, chunk, results, columns.length, 'test-model', Date.now());
      for (let row = 0; row < columns.length; row++) {
        const id = columns.ids?.[row];
        expected.push({
          index: chunk * CHUNK + row,
          ...(id ? { id } : {}),
          fraud_probability: probabilities[row]!,
          decision: DECISIONS[decisions[row]!]!,
        });
      }
    }
    assert.equal((await store.readJob(jobId))?.status, 'completed');
    return expected;
  };

  return { ...ctx, store, inject, submit, scoreAll };
}

describe('POST /jobs', () => {
  test('accepts NDJSON, JSON and CSV; answers 202 with the job and its Location', async (t) => {
    const j = await jobsApp(t);
    const bodies = {
      'application/x-ndjson': ndjson([record(1), record(2)]),
      'application/json': JSON.stringify({ records: [record(1), record(2)] }),
      'text/csv; charset=utf-8': 'transaction_amount,merchant_category,card_present,hour_of_day,days_since_last_transaction\n1,grocery,true,3,0.5\n',
    };
    for (const [type, payload] of Object.entries(bodies)) {
      const res = await j.inject({ method: 'POST', url: '/jobs', headers: { 'content-type': type }, payload });
      assert.equal(res.statusCode, 202, `${type}: ${res.body}`);
      const body = res.json();
      assert.equal(body.status, 'queued');
      assert.equal(res.headers.location, `/jobs/${body.job_id}`);
      assert.equal(body.results_url, `/jobs/${body.job_id}/results`);
    }
  });

  test('another content type, or none, is 415 in the contract shape, and creates nothing', async (t) => {
    const j = await jobsApp(t);
    const before = await j.redis.keys();
    for (const headers of [{ 'content-type': 'text/plain' }, { 'content-type': 'application/xml' }, {}] as Record<string, string>[]) {
      const res = await j.inject({ method: 'POST', url: '/jobs', headers, payload: '<records/>' });
      assert.equal(res.statusCode, 415, JSON.stringify(headers));
      assert.equal(res.json().error.code, 'unsupported_media_type');
      assert.match(res.json().request_id, /\S/);
    }
    assert.deepEqual(await j.redis.keys(), before);
  });

  test('bad rows are 400 naming each line and field; an empty body is 400', async (t) => {
    const j = await jobsApp(t);
    const before = await j.redis.keys();
    const res = await j.inject({
      method: 'POST',
      url: '/jobs',
      headers: { 'content-type': 'application/x-ndjson' },
      payload: ndjson([record(1), { ...record(2), hour_of_day: 24 }, { ...record(3), extra: 1 }]),
    });
    assert.equal(res.statusCode, 400);
    assert.equal(res.json().error.code, 'validation_error');
    assert.deepEqual(
      res.json().error.details.map((d: { path: string }) => d.path),
      ['lines.2.hour_of_day', 'lines.3.extra'],
    );
    const empty = await j.inject({ method: 'POST', url: '/jobs', headers: { 'content-type': 'application/x-ndjson' }, payload: '' });
    assert.equal(empty.statusCode, 400);
    assert.equal(empty.json().error.code, 'validation_error');
    assert.deepEqual(await j.redis.keys(), before);
  });

  test('a body over JOB_BODY_LIMIT_BYTES is 413', async (t) => {
    const j = await jobsApp(t);
    const big = ndjson(Array.from({ length: 300 }, (_, i) => record(i)));
    assert.ok(big.length > BODY_LIMIT);
    const res = await j.inject({ method: 'POST', url: '/jobs', headers: { 'content-type': 'application/x-ndjson' }, payload: big });
    assert.equal(res.statusCode, 413);
    assert.equal(res.json().error.code, 'payload_too_large');
  });

  test('an Idempotency-Key returns the same job, replayed; the same key of another owner does not', async (t) => {
    const j = await jobsApp(t);
    const post = (key: string) =>
      j.inject({
        method: 'POST',
        url: '/jobs',
        key,
        headers: { 'content-type': 'application/x-ndjson', 'idempotency-key': 'order-7' },
        payload: ndjson([record(1)]),
      });
    const first = await post(KEY_A);
    const again = await post(KEY_A);
    const other = await post(KEY_B);
    assert.equal(again.json().job_id, first.json().job_id);
    assert.equal(again.headers['idempotent-replayed'], 'true');
    assert.equal(first.headers['idempotent-replayed'], undefined);
    assert.notEqual(other.json().job_id, first.json().job_id);
    const tooLong = await j.inject({
      method: 'POST',
      url: '/jobs',
      headers: { 'content-type': 'application/x-ndjson', 'idempotency-key': 'k'.repeat(256) },
      payload: ndjson([record(1)]),
    });
    assert.equal(tooLong.statusCode, 400);
  });
});

test('every jobs route is 401 without a valid key, with WWW-Authenticate', async (t) => {
  const j = await jobsApp(t);
  const jobId = await j.submit([record(1)]);
  const calls: InjectOptions[] = [
    { method: 'POST', url: '/jobs', headers: { 'content-type': 'application/x-ndjson' }, payload: ndjson([record(1)]) },
    { method: 'GET', url: `/jobs/${jobId}` },
    { method: 'GET', url: `/jobs/${jobId}/results` },
    { method: 'DELETE', url: `/jobs/${jobId}` },
  ];
  for (const call of calls) {
    for (const key of [null, 'not-a-key']) {
      const res = await j.inject({ ...call, key });
      assert.equal(res.statusCode, 401, `${call.method} ${call.url} with ${key}`);
      assert.equal(res.json().error.code, 'unauthorized');
      assert.equal(res.headers['www-authenticate'], 'Bearer');
    }
  }
  assert.equal((await j.store.readJob(jobId))?.status, 'queued', 'the unauthorized DELETE cancelled nothing');
});

describe('GET /jobs/:id', () => {
  test('a queued job: its status, in the schema', async (t) => {
    const j = await jobsApp(t);
    const jobId = await j.submit([record(1), record(2), record(3), record(4), record(5)]);
    const res = await j.inject({ method: 'GET', url: `/jobs/${jobId}` });
    assert.equal(res.statusCode, 200);
    const status = JobStatusSchema.parse(res.json());
    assert.equal(status.status, 'queued');
    assert.deepEqual(status.progress, { total: 5, done: 0 });
    assert.equal(status.started_at, null);
    assert.equal(status.model_version, null);
  });

  test("unknown, another key's, and malformed ids", async (t) => {
    const j = await jobsApp(t);
    const jobId = await j.submit([record(1)]);
    for (const [url, key] of [
      ['/jobs/nope', KEY_A],
      [`/jobs/${jobId}`, KEY_B],
      [`/jobs/${jobId}/results`, KEY_B],
    ] as const) {
      const res = await j.inject({ method: 'GET', url, key });
      assert.equal(res.statusCode, 404, url);
      assert.equal(res.json().error.code, 'not_found');
    }
    // Longer than any job id: it names nothing (the router's maxParamLength), in the contract's body.
    const long = await j.inject({ method: 'GET', url: `/jobs/${'x'.repeat(65)}` });
    assert.equal(long.statusCode, 404);
    assert.equal(long.json().error.code, 'not_found');
  });

  test('503 unavailable while its Redis connection is down', async (t) => {
    const own = await buildTestApp(t);
    own.app.redis.disconnect();
    await waitFor(() => own.app.redis.status === 'end', { what: 'the connection to close' });
    const res = await own.app.inject({ method: 'GET', url: '/jobs/whatever' });
    assert.equal(res.statusCode, 503);
    assert.equal(res.json().error.code, 'unavailable');
    assert.equal(res.headers['retry-after'], '1');
  });
});

describe('DELETE /jobs/:id', () => {
  test('cancels a queued job (202 with its status) and drops its staged input; a second cancel changes nothing', async (t) => {
    const j = await jobsApp(t);
    const jobId = await j.submit(Array.from({ length: 10 }, (_, i) => record(i)));
    const res = await j.inject({ method: 'DELETE', url: `/jobs/${jobId}` });
    assert.equal(res.statusCode, 202);
    const status = JobStatusSchema.parse(res.json());
    assert.equal(status.status, 'cancelled');
    assert.ok(status.finished_at);
    assert.deepEqual(
      (await j.redis.keys()).filter((k) => k.includes(`{${jobId}}:in:`)),
      [],
    );
    const again = await j.inject({ method: 'DELETE', url: `/jobs/${jobId}` });
    assert.equal(again.statusCode, 202);
    assert.equal(again.json().finished_at, status.finished_at);
    const results = await j.inject({ method: 'GET', url: `/jobs/${jobId}/results` });
    assert.equal(results.statusCode, 409);
    assert.match(results.json().error.message, /cancelled/);
  });

  test('a completed job stays completed; an unknown one is 404', async (t) => {
    const j = await jobsApp(t);
    const jobId = await j.submit([record(1)]);
    await j.scoreAll(jobId);
    const res = await j.inject({ method: 'DELETE', url: `/jobs/${jobId}` });
    assert.equal(res.statusCode, 202);
    assert.equal(res.json().status, 'completed');
    assert.equal((await j.inject({ method: 'DELETE', url: '/jobs/nope' })).statusCode, 404);
  });
});

describe('GET /jobs/:id/results', () => {
  test('409 not_ready before completion, naming why a failed job failed', async (t) => {
    const j = await jobsApp(t);
    const jobId = await j.submit([record(1)]);
    const queued = await j.inject({ method: 'GET', url: `/jobs/${jobId}/results` });
    assert.equal(queued.statusCode, 409);
    assert.equal(queued.json().error.code, 'not_ready');
    await j.store.failJob(jobId, 'chunk 0 failed: boom', Date.now());
    const failed = await j.inject({ method: 'GET', url: `/jobs/${jobId}/results` });
    assert.equal(failed.statusCode, 409);
    assert.match(failed.json().error.message, /chunk 0 failed: boom/);
  });

  test('a completed job of 10 records in chunks of 4, ids that need escaping, in each format', async (t) => {
    const j = await jobsApp(t);
    const ids = ['plain', undefined, 'with,comma', 'with "quotes"', undefined, 'line\nbreak', 'ü-é', undefined, 'x', 'last'];
    const jobId = await j.submit(ids.map((id, i) => record(i, id)));
    const expected = await j.scoreAll(jobId);

    await t.test('JSON pages, in the page schema, across chunk boundaries', async () => {
      const results: JobResult[] = [];
      let offset: number | null = 0;
      while (offset !== null) {
        const res = await j.inject({ method: 'GET', url: `/jobs/${jobId}/results?offset=${offset}&limit=3` });
        assert.equal(res.statusCode, 200);
        assert.match(String(res.headers['content-type']), /^application\/json/);
        const page = ResultsPageSchema.parse(res.json());
        results.push(...page.results);
        offset = page.next_offset;
      }
      assert.deepEqual(results, expected);
      const whole = await j.inject({ method: 'GET', url: `/jobs/${jobId}/results` });
      assert.deepEqual(whole.json(), { results: expected, next_offset: null });
      const past = await j.inject({ method: 'GET', url: `/jobs/${jobId}/results?offset=50` });
      assert.deepEqual(past.json(), { results: [], next_offset: null });
    });

    await t.test('a bad page query is 400', async () => {
      for (const query of ['limit=0', 'limit=10001', 'offset=-1', 'offset=x', 'page=2']) {
        const res = await j.inject({ method: 'GET', url: `/jobs/${jobId}/results?${query}` });
        assert.equal(res.statusCode, 400, query);
        assert.equal(res.json().error.code, 'validation_error');
      }
    });

    await t.test('NDJSON: every result, one JSON object per line, the same as the pages', async () => {
      const res = await j.inject({ method: 'GET', url: `/jobs/${jobId}/results`, headers: { accept: 'application/x-ndjson' } });
      assert.equal(res.statusCode, 200);
      assert.match(String(res.headers['content-type']), /^application\/x-ndjson/);
      assert.ok(res.body.endsWith('\n'));
      assert.deepEqual(
        res.body
          .trimEnd()
          .split('\n')
          .map((line) => JSON.parse(line)),
        expected,
      );
    });

    await t.test('CSV: a header, then every result with its id quoted where it must be', async () => {
      const res = await j.inject({ method: 'GET', url: `/jobs/${jobId}/results`, headers: { accept: 'text/csv' } });
      assert.equal(res.statusCode, 200);
      assert.match(String(res.headers['content-type']), /^text\/csv/);
      const csvId = (id: string | undefined) => (id === undefined ? '' : /[",\n]/.test(id) ? `"${id.replaceAll('"', '""')}"` : id);
      const lines = expected.map((r) => `${r.index},${csvId(r.id)},${r.fraud_probability},${r.decision}`);
      assert.equal(res.body, `index,id,fraud_probability,decision\n${lines.join('\n')}\n`);
    });
  });
});

test('Accept negotiation: q-values honoured, JSON for anything else', () => {
  assert.equal(preferredResultFormat(undefined), 'application/json');
  assert.equal(preferredResultFormat('text/html'), 'application/json');
  assert.equal(preferredResultFormat('*/*'), 'application/json');
  assert.equal(preferredResultFormat('text/csv'), 'text/csv');
  assert.equal(preferredResultFormat('text/csv;q=0.5, application/x-ndjson;q=0.9'), 'application/x-ndjson');
  assert.equal(preferredResultFormat('application/json;q=0.1, TEXT/CSV'), 'text/csv');
});
