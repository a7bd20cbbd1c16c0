// Queue shard names: hash tags that put shard i of N in the i-th N-th of the slot space, so that
// on an evenly split cluster N shards land on N masters; and the cluster settings of the config.
import { test } from 'node:test';
import assert from 'node:assert/strict';
import keySlot from 'cluster-key-slot';
import { QUEUES, shardQueueName, shardQueueNames } from '../../src/shared/queues.ts';
import { loadConfig } from '../../src/shared/config.ts';

test('one shard: one hash-tagged queue per catalog queue', () => {
  assert.deepEqual(shardQueueNames(QUEUES.predict.name, 1), ['{predict-0}']);
  assert.deepEqual(shardQueueNames(QUEUES.bulk.name, 1), ['{bulk-chunk-0}']);
});

test('shard i of N hashes into the i-th N-th of the 16384 slots, the way redis-cli splits them', () => {
  for (const shards of [2, 3, 5, 24]) {
    for (const name of [QUEUES.predict.name, QUEUES.bulk.name]) {
      const names = shardQueueNames(name, shards);
      assert.equal(new Set(names).size, shards);
      names.forEach((queue, i) => {
        assert.match(queue, /^\{[^{}:]+\}$/, 'the whole name is the tag, with no ":" (BullMQ refuses it)');
        const slot = keySlot(`scoring:${queue}:wait`);
        assert.ok(slot >= Math.round((i * 16384) / shards) && slot < Math.round(((i + 1) * 16384) / shards), `${queue}: slot ${slot}`);
      });
    }
  }
  // redis-cli --cluster create with three masters: 0–5460, 5461–10922, 10923–16383.
  const slots = shardQueueNames(QUEUES.predict.name, 3).map((q) => keySlot(q));
  assert.ok(slots[0]! <= 5460 && slots[1]! >= 5461 && slots[1]! <= 10922 && slots[2]! >= 10923, slots.join(','));
});

test('the api and the worker compute the same names from the same settings', () => {
  assert.deepEqual(shardQueueNames('predict', 7), shardQueueNames('predict', 7));
  assert.throws(() => shardQueueName('predict', 3, 3), RangeError);
});

test('REDIS_CLUSTER_NODES: host:port pairs, cluster mode only when set', () => {
  assert.deepEqual(loadConfig({}).redis.clusterNodes, []);
  const config = loadConfig({ REDIS_CLUSTER_NODES: ' 10.0.0.1:7000, redis-b.internal:7001 ,', ONLINE_QUEUE_SHARDS: '3' });
  assert.deepEqual(config.redis.clusterNodes, [
    { host: '10.0.0.1', port: 7000 },
    { host: 'redis-b.internal', port: 7001 },
  ]);
  assert.deepEqual(config.queueShards, { predict: 3, bulk: 1 });
  assert.throws(() => loadConfig({ REDIS_CLUSTER_NODES: 'redis://a:1' }), /REDIS_CLUSTER_NODES/);
  assert.throws(() => loadConfig({ ONLINE_QUEUE_SHARDS: '0' }), /ONLINE_QUEUE_SHARDS/);
  assert.throws(() => loadConfig({ QUEUE_PREFIX: '{scoring}' }), /QUEUE_PREFIX/);
});
