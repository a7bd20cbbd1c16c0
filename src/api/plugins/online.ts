// Owns the api's Redis connections, the online queue and the dispatcher that waits for
// replies; decorates the instance with them and closes them when the app closes.
import fp from 'fastify-plugin';
import { Queue } from 'bullmq';
import type { FastifyInstance } from 'fastify';
import type { Redis } from 'ioredis';
import { createRedis } from '../../shared/redis.ts';
import { QUEUES } from '../../shared/queues.ts';
import type { Config } from '../../shared/config.ts';
import type { Telemetry } from '../../shared/telemetry.ts';
import { OnlineDispatcher } from '../online-dispatcher.ts';

declare module 'fastify' {
  interface FastifyInstance {
    redis: Redis;
    online: OnlineDispatcher;
  }
}

export type OnlinePluginOptions = { config: Config; telemetry: Telemetry };

async function onlinePlugin(app: FastifyInstance, { config, telemetry }: OnlinePluginOptions) {
  const producer = createRedis(config.redis.url, 'producer', 'api');
  const subscriber = createRedis(config.redis.url, 'consumer', 'api-replies');
  // ioredis reports a Redis that went away as an 'error' event; the reconnect is automatic.
  for (const conn of [producer, subscriber]) conn.on('error', (err) => app.log.debug({ err }, 'redis connection error'));

  const queue = new Queue(QUEUES.predict.name, { connection: producer, prefix: config.redis.prefix });
  queue.on('error', (err) => app.log.debug({ err }, 'predict queue error'));
  const online = new OnlineDispatcher({
    queue,
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
  app.addHook('onClose', async () => {
    await online.close();
    await queue.close();
    subscriber.disconnect();
    producer.disconnect();
  });
}

export default fp(onlinePlugin, { name: 'online' });
