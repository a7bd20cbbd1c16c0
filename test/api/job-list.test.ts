// GET /jobs in-process (buildApp + inject, real Redis, no worker): newest first, paging by cursor
// (ties within a millisecond included), the status filter, one key never seeing another's jobs,
// and expired jobs dropping out of the listing and its index.
import { test } from 'node:test';
import assert from 'node:assert/strict';
import type { InjectOptions } from 'fastify';
import { createBulkStore } from '../../src/shared/bulk-store.ts';
import { bulkJobKey, bulkOwnerJobsKey } from '../../src/shared/keys.ts';
import { JobListSchema, type JobList } from '../../src/shared/schemas/bulk-job.ts';
import { buildTestApp, type Teardown } from '../helpers/app.ts';

const KEY_A = 'key-a-0123456789';
const KEY_B = 'key-b-0123456789';

const RECORD = { transaction_amount: 12.5, merchant_category: 'grocery', card_present: true, hour_of_day: 9, days_since_last_transaction: 1.5 };

async function listApp(t: Teardown) {
  const ctx = await buildTestApp(t, { API_KEYS: `${KEY_A},${KEY_B}` });
  const store = createBulkStore(ctx.redis.client, ctx.redis.prefix);
  const inject = (opts: InjectOptions, key: string | null = KEY_A) =>
    ctx.app.inject({ ...opts, headers: { ...(key === null ? {} : { authorization: `Bearer ${key}` }), ...opts.headers } });

  const submit = async (key = KEY_A): Promise<string> => {
    const res = await inject(
      { method: 'POST', url: '/jobs', headers: { 'content-type': 'application/x-ndjson' }, payload: JSON.stringify(RECORD) },
      key,
    );
    assert.equal(res.statusCode, 202, res.body);
    return res.json<{ job_id: string }>().job_id;
  };

  const list = async (query = '', key = KEY_A): Promise<JobList> => {
    const res = await inject({ method: 'GET', url: `/jobs${query}` }, key);
    assert.equal(res.statusCode, 200, res.body);
    return JobListSchema.parse(res.json());
  };

  /** Every page, following next_cursor; the job ids in the order served. */
  const listAll = async (params: Record<string, string> = {}, key = KEY_A): Promise<string[]> => {
    const ids: string[] = [];
    let cursor: string | null = null;
    for (let pages = 0; pages < 100; pages++) {
      const query = new URLSearchParams({ ...params, ...(cursor ? { cursor } : {}) });
      const page = await list(`?${query}`, key);
      ids.push(...page.jobs.map((j) => j.job_id));
      cursor = page.next_cursor;
      if (cursor === null) return ids;
    }
    throw new Error('the listing did not end');
  };

  /** The owner hash the auth plugin gives a key: read back from a job that key made. */
  const ownerOf = async (jobId: string) => (await store.readJob(jobId))!.owner;

  return { ...ctx, store, inject, submit, list, listAll, ownerOf };
}

test('newest first, in pages that follow next_cursor to the end, each job once', async (t) => {
  const l = await listApp(t);
  const submitted: string[] = [];
  for (let i = 0; i < 7; i++) submitted.push(await l.submit());

  const first = await l.list('?limit=3');
  assert.equal(first.jobs.length, 3);
  assert.notEqual(first.next_cursor, null);
  const all = await l.listAll({ limit: '3' });
  assert.deepEqual(
    all.slice(0, 3),
    first.jobs.map((j) => j.job_id),
  );

  // Newest first: created_at descending, and within one millisecond, job id descending.
  const created = new Map<string, number>();
  for (const id of submitted) created.set(id, (await l.store.readJob(id))!.createdAt);
  const expected = [...submitted].sort((a, b) => created.get(b)! - created.get(a)! || (a < b ? 1 : -1));
  assert.deepEqual(all, expected);
  assert.equal(all.at(0), expected[0]);

  const whole = await l.list();
  assert.deepEqual(
    whole.jobs.map((j) => j.job_id),
    expected,
    'the default page holds all 7',
  );
  assert.equal(whole.next_cursor, null);
  assert.equal(whole.jobs[0]!.status, 'queued');
  assert.deepEqual(whole.jobs[0]!.progress, { total: 1, done: 0 });
});

test('jobs created in the same millisecond are neither repeated nor skipped across pages', async (t) => {
  const l = await listApp(t);
  const owner = await l.ownerOf(await l.submit());
  const createdAt = Date.now() + 60_000;
  const ids = ['tie-c', 'tie-a', 'tie-e', 'tie-b', 'tie-d'];
  const expiresAt = createdAt + 60_000;
  for (const jobId of ids) {
    // Jobs of no chunks: created, then promoted as submit does once every chunk is queued.
    await l.store.createJob({ jobId, owner, total: 0, chunks: 0, chunkSize: 10, createdAt, expiresAt, stagingUntil: expiresAt });
    await l.store.promoteJob(jobId, expiresAt, Date.now());
  }
  for (const limit of ['1', '2', '3']) {
    const all = await l.listAll({ limit });
    assert.deepEqual(all.slice(0, 5), ['tie-e', 'tie-d', 'tie-c', 'tie-b', 'tie-a'], `limit ${limit}`);
    assert.equal(all.length, 6);
  }
});

test('a staging job (its upload not yet wholly queued) is not listed until it is promoted', async (t) => {
  const l = await listApp(t);
  const submitted = await l.submit();
  const owner = await l.ownerOf(submitted);
  const createdAt = Date.now() + 60_000;
  const expiresAt = createdAt + 60_000;
  await l.store.createJob({ jobId: 'staging-1', owner, total: 0, chunks: 0, chunkSize: 10, createdAt, expiresAt, stagingUntil: expiresAt });
  assert.deepEqual(await l.listAll(), [submitted]);
  await l.store.promoteJob('staging-1', expiresAt, Date.now());
  assert.deepEqual(await l.listAll(), ['staging-1', submitted]);
});

test('a filter that matches little returns short pages rather than reading every job at once, and still ends', async (t) => {
  const l = await listApp(t);
  const owner = await l.ownerOf(await l.submit());
  const base = Date.now() + 60_000;
  const expiresAt = base + 600_000;
  const create = async (jobId: string, createdAt: number) => {
    await l.store.createJob({ jobId, owner, total: 0, chunks: 0, chunkSize: 10, createdAt, expiresAt, stagingUntil: expiresAt });
    await l.store.promoteJob(jobId, expiresAt, Date.now());
  };
  // The one cancelled job is the oldest of the listing but the first submitted; 1,100 queued jobs are newer.
  await create('cancelled-1', base);
  await l.store.cancelJob('cancelled-1', Date.now());
  await Promise.all(Array.from({ length: 1100 }, (_, i) => create(`queued-${String(i).padStart(4, '0')}`, base + 1 + i)));

  const first = await l.list('?status=cancelled');
  assert.deepEqual(first.jobs, [], 'the first 1,000 looked at hold no cancelled job');
  assert.notEqual(first.next_cursor, null, 'and the page says there is more');
  assert.deepEqual(await l.listAll({ status: 'cancelled' }), ['cancelled-1']);
});

test('?status= lists only the jobs in that status', async (t) => {
  const l = await listApp(t);
  const [queued, cancelled, failed] = [await l.submit(), await l.submit(), await l.submit()];
  await l.store.cancelJob(cancelled, Date.now());
  await l.store.failJob(failed, 'chunk 0 failed: boom', Date.now());

  assert.deepEqual(await l.listAll({ status: 'cancelled' }), [cancelled]);
  assert.deepEqual(await l.listAll({ status: 'queued', limit: '1' }), [queued]);
  const failedPage = await l.list('?status=failed');
  assert.equal(failedPage.jobs[0]!.error, 'chunk 0 failed: boom');
  assert.deepEqual(await l.listAll({ status: 'completed' }), []);
});

test("each key sees its own jobs only, and another key's cursor shows it nothing of them", async (t) => {
  const l = await listApp(t);
  const a = [await l.submit(KEY_A), await l.submit(KEY_A), await l.submit(KEY_A)];
  const b = [await l.submit(KEY_B)];
  assert.deepEqual(new Set(await l.listAll({}, KEY_A)), new Set(a));
  assert.deepEqual(await l.listAll({}, KEY_B), b);

  const cursorOfA = (await l.list('?limit=1', KEY_A)).next_cursor!;
  const seenByB = await l.list(`?cursor=${cursorOfA}`, KEY_B);
  assert.ok(seenByB.jobs.every((j) => b.includes(j.job_id)));

  const anonymous = await l.inject({ method: 'GET', url: '/jobs' }, null);
  assert.equal(anonymous.statusCode, 401);
  assert.equal(anonymous.json().error.code, 'unauthorized');
});

test('an expired job drops out of the listing and its index; the index expires with the newest job', async (t) => {
  const l = await listApp(t);
  const [older, expiring, newer] = [await l.submit(), await l.submit(), await l.submit()];
  const owner = await l.ownerOf(older);
  const index = bulkOwnerJobsKey(l.redis.prefix, owner);

  const newest = (await l.store.readJob(newer))!;
  const indexExpiry = (await l.redis.client.pttl(index)) + Date.now();
  assert.ok(Math.abs(indexExpiry - newest.expiresAt) < 5_000, `index expires near ${newest.expiresAt}, got ${indexExpiry}`);

  // What Redis does at the job's expires_at: every key of the job goes (PEXPIREAT in the past).
  await l.redis.client.pexpireat(bulkJobKey(l.redis.prefix, expiring), Date.now() - 1);
  assert.equal(await l.store.readJob(expiring), null);
  assert.notEqual(await l.redis.client.zscore(index, expiring), null, 'Redis expiry leaves the member behind');

  const listed = await l.listAll({ limit: '1' });
  assert.ok(!listed.includes(expiring));
  assert.deepEqual(new Set(listed), new Set([older, newer]));
  assert.equal(await l.redis.client.zscore(index, expiring), null, 'the listing removed the gone member');
  assert.equal(await l.redis.client.zcard(index), 2);
});

test('a bad query is 400 naming the parameter', async (t) => {
  const l = await listApp(t);
  await l.submit();
  for (const [query, path] of [
    ['limit=0', 'limit'],
    ['limit=101', 'limit'],
    ['limit=x', 'limit'],
    ['status=done', 'status'],
    ['cursor=not-a-cursor', 'cursor'],
    [`cursor=${Buffer.from('12.bad:id').toString('base64url')}`, 'cursor'],
    ['page=2', 'page'],
  ] as const) {
    const res = await l.inject({ method: 'GET', url: `/jobs?${query}` });
    assert.equal(res.statusCode, 400, query);
    assert.equal(res.json().error.code, 'validation_error', query);
    assert.ok(
      res.json().error.details.some((d: { path: string }) => d.path === path),
      `${query}: ${JSON.stringify(res.json().error.details)}`,
    );
  }
});
