// The bulk store on a real Redis Cluster: every script runs on the job's one slot, and a chunk's
// commit is not reported done before a replica of the job's master holds it (WAIT), so a
// failover cannot lose a commit whose chunk BullMQ, on another master, has already completed.
import { after, before, test } from 'node:test';
import assert from 'node:assert/strict';
import { randomUUID } from 'node:crypto';
import { Redis } from 'ioredis';
import { startTestRedisCluster, type TestRedisCluster } from '../helpers/redis-cluster.ts';
import { createRedis, type RedisClient } from '../../src/shared/redis.ts';
import { createBulkStore, type BulkStore } from '../../src/shared/bulk-store.ts';
import { bulkJobKey, bulkResultKey, recordsScoredKey } from '../../src/shared/keys.ts';
import { waitFor } from '../helpers/wait.ts';

const PREFIX = 'bulk-store-cluster';
let cluster: TestRedisCluster;
let redis: RedisClient;
let store: BulkStore;

before(async () => {
  cluster = await startTestRedisCluster();
  const clusterNodes = cluster.nodes.map((n) => ({ host: n.split(':')[0]!, port: Number(n.split(':')[1]) }));
  redis = createRedis({ url: 'redis://unused', clusterNodes }, 'consumer', 'test-bulk-store');
  redis.on('error', () => undefined);
  store = createBulkStore(redis, PREFIX);
});

after(async () => {
  redis?.disconnect();
  await cluster?.close();
});

async function runningJob(): Promise<string> {
  const jobId = randomUUID();
  const expiresAt = Date.now() + 60_000;
  await store.createJob({ jobId, owner: 'o', total: 20, chunks: 2, chunkSize: 10, createdAt: Date.now(), expiresAt, stagingUntil: expiresAt });
  for (const c of [0, 1]) await store.stageChunk(jobId, c, Buffer.from(`input ${c}`), expiresAt);
  await store.promoteJob(jobId, expiresAt, Date.now());
  return jobId;
}

function node(address: string): Redis {
  const [host, port] = address.split(':');
  const client = new Redis({ host, port: Number(port), maxRetriesPerRequest: 1 });
  client.on('error', () => undefined);
  return client;
}

test("claim, commit and finish run on the job's slot; the records-scored count moves on its own", async () => {
  const jobId = await runningJob();
  assert.equal((await store.claimChunk(jobId, 0, Date.now())).outcome, 'claimed');
  assert.equal(await store.commitChunk(jobId, 0, Buffer.from('out 0'), 10, 'm-1', Date.now()), 'written');
  assert.equal(await store.commitChunk(jobId, 0, Buffer.from('out 0'), 10, 'm-1', Date.now()), 'duplicate');
  assert.equal(await store.commitChunk(jobId, 1, Buffer.from('out 1'), 10, 'm-1', Date.now()), 'written');
  const job = await store.readJob(jobId);
  assert.equal(job?.status, 'completed');
  assert.equal(job?.done, 20);
  assert.equal(Number(await redis.get(recordsScoredKey(PREFIX))), 20);
});

test('after a commit, awaitReplica resolves once a replica holds the results, and throws when none answers', async () => {
  const jobId = await runningJob();
  assert.equal(await store.commitChunk(jobId, 0, Buffer.from('out 0'), 10, 'm-1', Date.now()), 'written');
  await store.awaitReplica(jobId);
  const master = await cluster.masterOf(bulkJobKey(PREFIX, jobId));
  const [replica] = await cluster.replicasOf(master);
  assert.ok(replica, `${master} has a replica`);
  const onReplica = node(replica);
  try {
    await onReplica.call('READONLY');
    assert.equal(String(await onReplica.getBuffer(bulkResultKey(PREFIX, jobId, 0))), 'out 0', 'the replica holds the commit');
  } finally {
    onReplica.disconnect();
  }

  // A replica that does not answer (frozen, shorter than the node timeout): the wait gives up,
  // and the caller (the bulk consumer) fails the attempt, so BullMQ retries the chunk.
  const frozen = cluster.processOf(replica);
  frozen.kill('SIGSTOP');
  try {
    assert.equal(await store.commitChunk(jobId, 1, Buffer.from('out 1'), 10, 'm-1', Date.now()), 'written');
    const started = Date.now();
    await assert.rejects(store.awaitReplica(jobId), /reached no replica/);
    assert.ok(Date.now() - started < 5000);
  } finally {
    frozen.kill('SIGCONT');
  }
  await waitFor(
    async () =>
      (await store.awaitReplica(jobId).then(
        () => true,
        () => false,
      )) || undefined,
    { timeoutMs: 20_000, what: 'the replica back' },
  );
});

test('on a single Redis there is nothing to wait for', async () => {
  const connection = createRedis('redis://127.0.0.1:1', 'producer', 'unused');
  connection.on('error', () => undefined);
  try {
    // Resolves without a command: the connection never reaches a Redis.
    await createBulkStore(connection, PREFIX).awaitReplica('any');
  } finally {
    connection.disconnect();
  }
});
