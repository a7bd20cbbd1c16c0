// Owns the api's Redis connections and its bulk queue's producer (shared by every route and
// plugin; the online queues, one per model version, are the dispatcher's); decorates the instance
// with them and closes them when the app closes, after every plugin that depends on it. A single
// Redis or a Redis Cluster alike (createRedis). A queue split in shards is sent to on one shard,
// picked at start: the bulk queue's here, the online queues' (every version's) given to the dispatcher.
import { randomInt } from 'node:crypto';
import fp from 'fastify-plugin';
import type { Queue } from 'bullmq';
import type { FastifyInstance } from 'fastify';
import { createRedis, reportReachability, type RedisClient } from '../../shared/redis.ts';
import { QUEUES } from '../../shared/queues.ts';
import { createProducer, type QueueProducer, type Sharding } from '../../shared/queue-clients.ts';
import type { Config } from '../../shared/config.ts';
import type { Telemetry } from '../../shared/telemetry.ts';

export type ApiQueues = { bulk: QueueProducer<'bulk'> };

declare module 'fastify' {
  interface FastifyInstance {
    /** The producer connection: fail-fast (a request gets 503 at once while Redis is away). */
    redis: RedisClient;
    /** A connection for (S)SUBSCRIBE only: a subscribed ioredis connection can do nothing else. */
    redisSubscriber: RedisClient;
    queues: ApiQueues;
    /** The shard of every model version's online queue this process sends to, and how many there are. */
    onlineSharding: Sharding;
  }
}

export type QueuesPluginOptions = { config: Config; telemetry: Pick<Telemetry, 'tracing'> };

async function queuesPlugin(app: FastifyInstance, { config, telemetry }: QueuesPluginOptions) {
  const producer = createRedis(config.redis, 'producer', 'api');
  const subscriber = createRedis(config.redis, 'subscriber', 'api-replies');
  // ioredis reports a Redis that went away as an 'error' event; the reconnect is automatic.
  for (const conn of [producer, subscriber]) conn.on('error', (err) => app.log.debug({ err }, 'redis connection error'));
  // An api started before its Redis (or with no node of its cluster answering) waits, says so, and /ready is 503.
  reportReachability(producer, config.redis, app.log, 'api');

  const { prefix } = config.redis;
  // Each api process sends to one shard; a fleet of api processes spreads over all of them,
  // while every worker drains every shard.
  const sharding = (shards: number) => ({ shards, shard: randomInt(shards) });
  const queues: ApiQueues = {
    bulk: createProducer(QUEUES.bulk, producer, prefix, sharding(config.queueShards.bulk), { tracing: telemetry.tracing }),
  };
  const onlineSharding = sharding(config.queueShards.predict);
  const allQueues: Queue[] = [...queues.bulk.shards];
  for (const queue of allQueues) queue.on('error', (err) => app.log.debug({ err, queue: queue.name }, 'queue error'));
  app.log.info({ bulk: queues.bulk.queue.name, online_shard: onlineSharding.shard, online_shards: onlineSharding.shards }, 'sending to queue shards');

  app.decorate<RedisClient>('redis', producer);
  app.decorate<RedisClient>('redisSubscriber', subscriber);
  app.decorate('queues', queues);
  app.decorate('onlineSharding', onlineSharding);
  app.addHook('onClose', async () => {
    await Promise.all(allQueues.map((queue) => queue.close()));
    subscriber.disconnect();
    producer.disconnect();
  });
}

export default fp(queuesPlugin, { name: 'queues' });
