// Each Lua transition of a bulk chunk against a real Redis: the claim (one round trip: status
// plus staged input, or why the chunk is not to be scored) and the commit (results once,
// progress and the records-scored count only when new, the job completed by its last chunk).
import { test, before, after, describe } from 'node:test';
import assert from 'node:assert/strict';
import { randomUUID } from 'node:crypto';
import { createBulkStore, type BulkStore } from '../../src/shared/bulk-store.ts';
import { recordsScoredKey } from '../../src/shared/keys.ts';
import { prefixedRedis, type PrefixedRedis } from '../helpers/redis-prefix.ts';

let redis: PrefixedRedis;
let store: BulkStore;

before(async () => {
  redis = await prefixedRedis('bulk-store');
  store = createBulkStore(redis.client, redis.prefix);
});
after(() => redis?.close());

const T0 = 1_700_000_000_000;
const jobKey = (jobId: string) => `${redis.prefix}:bulk:{${jobId}}`;
const inputKey = (jobId: string, chunk: number) => `${jobKey(jobId)}:in:${chunk}`;
const resultKey = (jobId: string, chunk: number) => `${jobKey(jobId)}:out:${chunk}`;
const scoredKey = () => recordsScoredKey(redis.prefix);
const scoredCount = async () => Number((await redis.client.get(scoredKey())) ?? 0);

/** A queued job of `chunks` staged chunks of 10 records each (the last one of `lastRows`). */
async function queuedJob(chunks = 2, lastRows = 10): Promise<{ jobId: string; inputs: Buffer[] }> {
  const jobId = randomUUID();
  const expiresAt = Date.now() + 60_000;
  const job = { jobId, owner: 'o', total: (chunks - 1) * 10 + lastRows, chunks, chunkSize: 10, createdAt: T0, expiresAt };
  await store.createJob({ ...job, stagingUntil: expiresAt });
  const inputs = Array.from({ length: chunks }, (_, c) => Buffer.from(`input of chunk ${c}\u0000\xff`, 'latin1'));
  for (const [c, data] of inputs.entries()) await store.stageChunk(jobId, c, data, expiresAt);
  await store.promoteJob(jobId, expiresAt, T0);
  return { jobId, inputs };
}

describe('claim', () => {
  test('a queued job: running from now on, and the staged input comes back byte for byte', async () => {
    const { jobId, inputs } = await queuedJob();
    const claim = await store.claimChunk(jobId, 1, T0 + 5);
    assert.equal(claim.outcome, 'claimed');
    assert.ok(claim.outcome === 'claimed' && claim.input.equals(inputs[1]!));
    const job = await store.readJob(jobId);
    assert.equal(job?.status, 'running');
    assert.equal(job?.startedAt, T0 + 5);
    // Claiming reads the input; only the commit removes it.
    assert.equal(await redis.client.exists(inputKey(jobId, 1)), 1);
  });

  test('a running job keeps the moment it started', async () => {
    const { jobId, inputs } = await queuedJob();
    await store.claimChunk(jobId, 0, T0 + 5);
    const claim = await store.claimChunk(jobId, 1, T0 + 9);
    assert.ok(claim.outcome === 'claimed' && claim.input.equals(inputs[1]!));
    assert.equal((await store.readJob(jobId))?.startedAt, T0 + 5);
  });

  test('a cancelled or failed job: not scored, and its state left as it is', async () => {
    for (const end of ['cancelled', 'failed'] as const) {
      const { jobId } = await queuedJob();
      if (end === 'cancelled') await store.cancelJob(jobId, T0 + 1);
      else await store.failJob(jobId, 'chunk 3 failed', T0 + 1);
      const before = await redis.client.hgetall(jobKey(jobId));
      assert.deepEqual(await store.claimChunk(jobId, 0, T0 + 5), { outcome: 'finished', status: end });
      assert.deepEqual(await redis.client.hgetall(jobKey(jobId)), before);
      assert.equal(before.started_at, undefined);
    }
  });

  test('a chunk whose results exist is not scored again', async () => {
    const { jobId } = await queuedJob();
    await store.claimChunk(jobId, 0, T0);
    assert.equal(await store.commitChunk(jobId, 0, Buffer.from('r0'), 10, 'm1', T0 + 1), 'written');
    assert.deepEqual(await store.claimChunk(jobId, 0, T0 + 2), { outcome: 'scored' });
  });

  test('a completed job: its chunks are done', async () => {
    const { jobId } = await queuedJob(1);
    await store.commitChunk(jobId, 0, Buffer.from('r0'), 10, 'm1', T0);
    assert.deepEqual(await store.claimChunk(jobId, 0, T0 + 2), { outcome: 'finished', status: 'completed' });
  });

  test('a running job whose chunk has neither input nor results', async () => {
    const { jobId } = await queuedJob();
    await redis.client.del(inputKey(jobId, 1));
    assert.deepEqual(await store.claimChunk(jobId, 1, T0), { outcome: 'missing' });
  });

  test('an expired job is gone, and claiming it creates nothing', async () => {
    const jobId = randomUUID();
    assert.deepEqual(await store.claimChunk(jobId, 0, T0), { outcome: 'gone' });
    assert.equal(await redis.client.exists(jobKey(jobId)), 0);
  });
});

describe('commit', () => {
  test('new results: written once with the job expiry, input dropped, progress and the scored count advanced', async () => {
    const { jobId } = await queuedJob(3);
    await store.claimChunk(jobId, 1, T0);
    const scoredBefore = await scoredCount();
    assert.equal(await store.commitChunk(jobId, 1, Buffer.from([1, 2, 0, 255]), 10, 'm1', T0 + 7), 'written');

    assert.deepEqual(await store.readResultChunk(jobId, 1), Buffer.from([1, 2, 0, 255]));
    assert.equal(await redis.client.exists(inputKey(jobId, 1)), 0);
    const ttl = await redis.client.pttl(resultKey(jobId, 1));
    assert.ok(ttl > 0 && ttl <= (await redis.client.pttl(jobKey(jobId))) + 50, `result ttl ${ttl}`);
    const job = await store.readJob(jobId);
    assert.equal(job?.status, 'running');
    assert.equal(job?.done, 10);
    assert.equal(job?.modelVersion, 'm1');
    assert.equal(job?.finishedAt, null);
    assert.equal(await scoredCount(), scoredBefore + 10);
  });

  test('a duplicate (a retried chunk) changes nothing: results, progress and count stay', async () => {
    const { jobId } = await queuedJob(3);
    await store.commitChunk(jobId, 0, Buffer.from('first'), 10, 'm1', T0);
    const scoredBefore = await scoredCount();
    assert.equal(await store.commitChunk(jobId, 0, Buffer.from('second'), 10, 'm2', T0 + 1), 'duplicate');
    assert.deepEqual(await store.readResultChunk(jobId, 0), Buffer.from('first'));
    const job = await store.readJob(jobId);
    assert.equal(job?.done, 10);
    assert.equal(job?.modelVersion, 'm1');
    assert.equal(await scoredCount(), scoredBefore);
  });

  test('the last new chunk completes the job; a commit before any claim starts it', async () => {
    const { jobId } = await queuedJob(2, 4);
    assert.equal(await store.commitChunk(jobId, 1, Buffer.from('r1'), 4, 'm1', T0 + 3), 'written');
    let job = await store.readJob(jobId);
    assert.equal(job?.status, 'running');
    assert.equal(job?.startedAt, T0 + 3);
    assert.equal(await store.commitChunk(jobId, 0, Buffer.from('r0'), 10, 'm1', T0 + 8), 'written');
    job = await store.readJob(jobId);
    assert.equal(job?.status, 'completed');
    assert.equal(job?.done, 14);
    assert.equal(job?.finishedAt, T0 + 8);
    // Nothing staged is left once every chunk has its results.
    assert.deepEqual(await redis.keys().then((keys) => keys.filter((k) => k.startsWith(`${jobKey(jobId)}:in:`))), []);
  });

  test('a job cancelled while its chunk was scored keeps no results and no progress', async () => {
    const { jobId } = await queuedJob();
    await store.claimChunk(jobId, 0, T0);
    await store.cancelJob(jobId, T0 + 1);
    const scoredBefore = await scoredCount();
    assert.equal(await store.commitChunk(jobId, 0, Buffer.from('r0'), 10, 'm1', T0 + 2), 'finished');
    assert.equal(await redis.client.exists(resultKey(jobId, 0)), 0);
    const job = await store.readJob(jobId);
    assert.equal(job?.status, 'cancelled');
    assert.equal(job?.done, 0);
    assert.equal(await scoredCount(), scoredBefore);
  });

  test('an expired job is gone, and the commit writes nothing', async () => {
    const jobId = randomUUID();
    assert.equal(await store.commitChunk(jobId, 0, Buffer.from('r0'), 10, 'm1', T0), 'gone');
    assert.equal(await redis.client.exists(resultKey(jobId, 0)), 0);
  });
});

describe('the model a job is pinned to', () => {
  test('createJob keeps the model, its pin and the encoding; a job made without them is fraud, unpinned, columnar', async () => {
    const jobId = randomUUID();
    const expiresAt = Date.now() + 60_000;
    await store.createJob({
      jobId,
      owner: 'o',
      total: 1,
      chunks: 1,
      chunkSize: 10,
      createdAt: T0,
      expiresAt,
      stagingUntil: expiresAt,
      modelName: 'species',
      modelVersionNumber: 3,
      modelVersion: 'sp-3',
      encoding: 'rows',
    });
    const job = await store.readJob(jobId);
    assert.deepEqual([job?.modelName, job?.modelVersionNumber, job?.modelVersion, job?.encoding, job?.scoredBy], ['species', 3, 'sp-3', 'rows', {}]);
    const { jobId: plain } = await queuedJob();
    const old = await store.readJob(plain);
    assert.deepEqual([old?.modelName, old?.modelVersionNumber, old?.modelVersion, old?.encoding], ['fraud', null, null, 'columns']);
  });

  test('pinVersion: the first pin wins, later ones read it; a job that is gone has none', async () => {
    const { jobId } = await queuedJob();
    assert.equal(await store.pinVersion(jobId, 2), 2);
    assert.equal(await store.pinVersion(jobId, 5), 2);
    assert.equal((await store.readJob(jobId))?.modelVersionNumber, 2);
    assert.equal(await store.pinVersion(randomUUID(), 1), null);
  });

  test('scored_by counts the records each display version wrote, once per chunk', async () => {
    const { jobId } = await queuedJob(3, 4);
    await store.commitChunk(jobId, 0, Buffer.from('r0'), 10, 'v-a', T0 + 1);
    await store.commitChunk(jobId, 0, Buffer.from('r0 again'), 10, 'v-a', T0 + 2);
    await store.commitChunk(jobId, 1, Buffer.from('r1'), 10, 'v-b', T0 + 3);
    await store.commitChunk(jobId, 2, Buffer.from('r2'), 4, 'v-a', T0 + 4);
    assert.deepEqual((await store.readJob(jobId))?.scoredBy, { 'v-a': 14, 'v-b': 10 });
  });
});

describe('a job opened while its body is read', () => {
  test('its chunks are scored meanwhile, it cannot complete, and promotion completes it once every chunk was scored', async () => {
    const jobId = randomUUID();
    const expiresAt = Date.now() + 60_000;
    const stagingUntil = Date.now() + 30_000;
    await store.openJob({ jobId, owner: 'o', chunkSize: 10, createdAt: T0, expiresAt, stagingUntil });
    for (const chunk of [0, 1]) {
      await store.stageChunk(jobId, chunk, Buffer.from(`in ${chunk}`), stagingUntil);
      assert.equal((await store.claimChunk(jobId, chunk, T0 + 1)).outcome, 'claimed');
      assert.equal(await store.commitChunk(jobId, chunk, Buffer.from(`out ${chunk}`), 10, 'm1', T0 + 2), 'written');
    }
    // Every chunk queued so far is scored, yet the body may hold more: running, staging.
    const open = await redis.client.hgetall(jobKey(jobId));
    assert.equal(open.status, 'running');
    assert.equal(open.staging, '1');
    assert.equal(open.done, '20');
    assert.equal(open.finished_at, undefined);

    await store.sealJob(jobId, 20, 2);
    assert.equal(await store.promoteJob(jobId, expiresAt, T0 + 3), 'completed');
    const job = await store.readJob(jobId);
    assert.equal(job?.status, 'completed');
    assert.equal(job?.finishedAt, T0 + 3);
    assert.equal(job?.staging, false);
    // The results written while staging now live as long as the job.
    assert.ok(Math.abs((await redis.client.pexpiretime(resultKey(jobId, 1))) - expiresAt) < 5);
  });

  test('dropJobChunks removes both the input and the results of its chunks', async () => {
    const jobId = randomUUID();
    const until = Date.now() + 30_000;
    await store.openJob({ jobId, owner: 'o', chunkSize: 10, createdAt: T0, expiresAt: until, stagingUntil: until });
    await store.stageChunk(jobId, 0, Buffer.from('in 0'), until);
    await store.stageChunk(jobId, 1, Buffer.from('in 1'), until);
    await store.claimChunk(jobId, 0, T0);
    await store.commitChunk(jobId, 0, Buffer.from('out 0'), 10, 'm1', T0);
    await store.dropJobChunks(jobId, 2);
    assert.equal(await redis.client.exists(inputKey(jobId, 0), resultKey(jobId, 0), inputKey(jobId, 1), resultKey(jobId, 1)), 0);
  });

  test('openJob keeps the model, its pin and the encoding, and lists the job under its owner at once', async () => {
    const jobId = randomUUID();
    const owner = `o-${randomUUID()}`;
    const until = Date.now() + 30_000;
    await store.openJob({
      jobId,
      owner,
      chunkSize: 10,
      createdAt: T0,
      expiresAt: until,
      stagingUntil: until,
      modelName: 'species',
      modelVersionNumber: 3,
      modelVersion: 'sp-3',
      modelAlias: 'prod',
      encoding: 'rows',
    });
    const job = await store.readJob(jobId);
    assert.deepEqual(
      [job?.modelName, job?.modelVersionNumber, job?.modelVersion, job?.modelAlias, job?.encoding, job?.staging],
      ['species', 3, 'sp-3', 'prod', 'rows', true],
    );
    const listed: string[] = [];
    for await (const member of store.ownerJobIds(owner, null, 10)) listed.push(member.jobId);
    assert.deepEqual(listed, [jobId]);
  });
});
