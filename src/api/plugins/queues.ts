// Owns the api's Redis connections and its bulk queue's producer (shared by every route and
// plugin; the online queues, one per model version, are the dispatcher's); decorates the instance with them and closes them when the
// app closes, after every plugin that depends on it.
import fp from 'fastify-plugin';
import type { FastifyInstance } from 'fastify';
import type { Redis } from 'ioredis';
import { createRedis } from '../../shared/redis.ts';
import { QUEUES } from '../../shared/queues.ts';
import { createProducer, type QueueProducer } from '../../shared/queue-clients.ts';
import type { Config } from '../../shared/config.ts';

export type ApiQueues = { bulk: QueueProducer<'bulk'> };

declare module 'fastify' {
  interface FastifyInstance {
    /** The producer connection: fail-fast (a request gets 503 at once while Redis is away). */
    redis: Redis;
    /** A connection for SUBSCRIBE only: a subscribed ioredis connection can do nothing else. */
    redisSubscriber: Redis;
    queues: ApiQueues;
  }
}

export type QueuesPluginOptions = { config: Config };

async function queuesPlugin(app: FastifyInstance, { config }: QueuesPluginOptions) {
  const producer = createRedis(config.redis.url, 'producer', 'api');
  const subscriber = createRedis(config.redis.url, 'consumer', 'api-replies');
  // ioredis reports a Redis that went away as an 'error' event; the reconnect is automatic.
  for (const conn of [producer, subscriber]) conn.on('error', (err) => app.log.debug({ err }, 'redis connection error'));

  const { prefix } = config.redis;
  const queues: ApiQueues = {
    bulk: createProducer(QUEUES.bulk, producer, prefix),
  };
  for (const { queue } of Object.values(queues)) queue.on('error', (err) => app.log.debug({ err, queue: queue.name }, 'queue error'));

  app.decorate('redis', producer);
  app.decorate('redisSubscriber', subscriber);
  app.decorate('queues', queues);
  app.addHook('onClose', async () => {
    await Promise.all(Object.values(queues).map(({ queue }) => queue.close()));
    subscriber.disconnect();
    producer.disconnect();
  });
}

export default fp(queuesPlugin, { name: 'queues' });
