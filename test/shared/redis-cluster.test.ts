// The local Redis Cluster the cluster-mode tests run on: it forms, serves hash-tagged keys
// through ioredis's Cluster client, fails over when a master is SIGKILLed, and leaves no
// redis-server behind.
import { after, before, test } from 'node:test';
import assert from 'node:assert/strict';
import { Cluster, Redis } from 'ioredis';
import { startTestRedisCluster, type TestRedisCluster } from '../helpers/redis-cluster.ts';
import { waitFor } from '../helpers/wait.ts';

let cluster: TestRedisCluster;
let client: Cluster;

before(async () => {
  cluster = await startTestRedisCluster();
  client = new Cluster(
    cluster.nodes.map((n) => ({ host: n.split(':')[0], port: Number(n.split(':')[1]) })),
    { clusterRetryStrategy: () => 100, redisOptions: { maxRetriesPerRequest: 1 } },
  );
  client.on('error', () => undefined);
});

after(async () => {
  client?.disconnect();
  await cluster?.close();
});

test('six nodes, three masters with a replica each', async () => {
  assert.equal(cluster.nodes.length, 6);
  // Asked of one node directly: a keyless command through the Cluster client goes to any node,
  // and one sent before the client's first slot refresh can be cut off when that refresh drops
  // the replica it went to from the pool ("Connection is closed").
  const [host, port] = cluster.nodes[0]!.split(':');
  const node = new Redis({ host, port: Number(port) });
  const lines = String(await node.cluster('NODES'))
    .trim()
    .split('\n')
    .map((l) => l.split(' '));
  node.disconnect();
  const masters = lines.filter((l) => l[2]!.includes('master'));
  const replicas = lines.filter((l) => l[2]!.includes('slave'));
  assert.equal(masters.length, 3);
  assert.deepEqual(replicas.map((l) => l[3]).sort(), masters.map((l) => l[0]).sort(), 'each master has one replica');
  await client.set('{probe}', '1');
  assert.equal(client.nodes('master').length, 3, 'the client sees the three masters');
});

test('keys sharing a hash tag share a slot; keys that do not cannot be written together', async () => {
  await client.mset('{job-1}:a', '1', '{job-1}:b', '2');
  assert.deepEqual(await client.mget('{job-1}:a', '{job-1}:b'), ['1', '2']);
  // Two untagged keys in different slots: the cluster refuses a multi-key command over them.
  assert.notEqual(await client.cluster('KEYSLOT', 'a'), await client.cluster('KEYSLOT', 'b'));
  await assert.rejects(client.mset('a', '1', 'b', '2'), /CROSSSLOT/);
});

test('a SIGKILLed master is replaced by its replica, and the keys it held are served again', async (t) => {
  const key = '{job-2}:state';
  await client.set(key, 'running');
  const owner = await cluster.masterOf(key);
  // Replication is asynchronous: wait until the replica holds the write, or the failover could lose it.
  const replicasAcknowledging = async () => {
    const [host, port] = owner.split(':');
    const master = new Redis({ host, port: Number(port), maxRetriesPerRequest: 1 });
    try {
      return (await master.call('WAIT', 1, 5000)) as number;
    } finally {
      master.disconnect();
    }
  };
  assert.ok((await replicasAcknowledging()) >= 1, 'one replica acknowledged the write');

  const started = Date.now();
  const { killed, promoted } = await cluster.killMaster({ key });
  t.diagnostic(`failover took ${Date.now() - started} ms`);
  assert.equal(killed, owner);
  assert.notEqual(promoted, killed);
  assert.equal(await cluster.masterOf(key), promoted);
  const value = await waitFor(() => client.get(key).then((v) => v ?? undefined), { timeoutMs: 30_000, what: 'the key through the promoted replica' });
  assert.equal(value, 'running');
  await client.set(key, 'completed');
  assert.equal(await client.get(key), 'completed');
});

test('close() leaves no redis-server running', async () => {
  const procs = cluster.processes();
  await cluster.close();
  for (const proc of procs) assert.ok(proc.exitCode !== null || proc.signalCode !== null, `redis-server ${proc.pid} exited`);
  for (const node of cluster.nodes) {
    const [host, port] = node.split(':');
    const probe = new Redis({ host, port: Number(port), lazyConnect: true, retryStrategy: () => null, maxRetriesPerRequest: 0 });
    probe.on('error', () => undefined);
    await assert.rejects(probe.connect(), `nothing answers on ${node}`);
    probe.disconnect();
  }
});
