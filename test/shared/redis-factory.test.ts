// createRedis: one factory for a single Redis and a Redis Cluster, with the roles' options
// (producers fail fast, consumers wait, subscribers get sharded pub/sub on a cluster) and a
// cluster's credentials and TLS taken from REDIS_URL.
import { test } from 'node:test';
import assert from 'node:assert/strict';
import { Cluster, Redis } from 'ioredis';
import { createRedis } from '../../src/shared/redis.ts';
import { freePort } from '../helpers/ports.ts';

test('a URL alone is a single Redis; producers fail fast, consumers wait', async () => {
  const url = `redis://127.0.0.1:${await freePort()}`;
  const producer = createRedis(url, 'producer', 'p');
  const consumer = createRedis({ url, clusterNodes: [] }, 'consumer', 'c');
  try {
    assert.ok(producer instanceof Redis && consumer instanceof Redis);
    assert.equal(producer.options.enableOfflineQueue, false);
    assert.equal(producer.options.maxRetriesPerRequest, 1);
    assert.equal(consumer.options.enableOfflineQueue, true);
    assert.equal(consumer.options.maxRetriesPerRequest, null);
  } finally {
    producer.disconnect();
    consumer.disconnect();
  }
});

test("cluster nodes make a Cluster client, with REDIS_URL's credentials and TLS on every node", async () => {
  const clusterNodes = [{ host: '127.0.0.1', port: await freePort() }];
  const producer = createRedis({ url: 'rediss://svc:p%40ss@not-used:6379', clusterNodes }, 'producer', 'p');
  const subscriber = createRedis({ url: 'redis://127.0.0.1:6379', clusterNodes }, 'subscriber', 's');
  for (const c of [producer, subscriber]) c.on('error', () => undefined);
  try {
    assert.ok(producer instanceof Cluster && subscriber instanceof Cluster);
    assert.equal(producer.options.enableOfflineQueue, false, 'a producer fails fast while the cluster is not ready');
    assert.equal(producer.options.redisOptions?.username, 'svc');
    assert.equal(producer.options.redisOptions?.password, 'p@ss');
    assert.deepEqual(producer.options.redisOptions?.tls, {});
    assert.equal(producer.options.shardedSubscribers, false);
    assert.equal(subscriber.options.shardedSubscribers, true, 'SSUBSCRIBE goes to the master of its slot');
    assert.equal(subscriber.options.redisOptions?.password, undefined);
    assert.equal(subscriber.options.redisOptions?.tls, undefined);
  } finally {
    producer.disconnect();
    subscriber.disconnect();
  }
});
