// Owns the api's Redis connections, its BullMQ queues (one Queue object per queue, shared by
// every route and plugin) and the dispatcher that waits for replies; decorates the instance
// with them and closes them when the app closes.
import fp from 'fastify-plugin';
import { Queue } from 'bullmq';
import type { FastifyInstance } from 'fastify';
import type { Redis } from 'ioredis';
import { createRedis } from '../../shared/redis.ts';
import { QUEUES } from '../../shared/queues.ts';
import type { Config } from '../../shared/config.ts';
import { bullmqTelemetry, type Telemetry } from '../../shared/telemetry.ts';
import { OnlineDispatcher } from '../online-dispatcher.ts';

declare module 'fastify' {
  interface FastifyInstance {
    redis: Redis;
    online: OnlineDispatcher;
    queues: { predict: Queue; bulk: Queue };
  }
}

export type OnlinePluginOptions = { config: Config; telemetry: Telemetry };

async function onlinePlugin(app: FastifyInstance, { config, telemetry }: OnlinePluginOptions) {
  const producer = createRedis(config.redis.url, 'producer', 'api');
  const subscriber = createRedis(config.redis.url, 'consumer', 'api-replies');
  // ioredis reports a Redis that went away as an 'error' event; the reconnect is automatic.
  for (const conn of [producer, subscriber]) conn.on('error', (err) => app.log.debug({ err }, 'redis connection error'));

  const { prefix } = config.redis;
  const queues = {
    predict: new Queue(QUEUES.predict.name, { connection: producer, prefix }),
    // With tracing on, each chunk job carries the submit's trace context (BullMQ's telemetry option).
    bulk: new Queue(QUEUES.bulk.name, { connection: producer, prefix, ...bullmqTelemetry() }),
  };
  for (const queue of Object.values(queues)) queue.on('error', (err) => app.log.debug({ err, queue: queue.name }, 'queue error'));
  const online = new OnlineDispatcher({
    queue: queues.predict,
    producer,
    subscriber,
    prefix: config.redis.prefix,
    maxRecordsPerJob: config.api.maxBatchRecords,
    maxWaiting: config.api.onlineMaxWaiting,
    logger: app.log,
    tracer: telemetry.tracing ? telemetry.tracer : undefined,
  });
  await online.start();

  app.decorate('redis', producer);
  app.decorate('online', online);
  app.decorate('queues', queues);
  app.addHook('onClose', async () => {
    await online.close();
    await Promise.all(Object.values(queues).map((q) => q.close()));
    subscriber.disconnect();
    producer.disconnect();
  });
}

export default fp(onlinePlugin, { name: 'online' });
