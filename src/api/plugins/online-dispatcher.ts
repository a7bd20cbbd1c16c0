// The online dispatcher as a plugin: built on the queues plugin's producer and connections,
// decorated as app.online, closed (after its callers heard their replies) before the queues are.
import fp from 'fastify-plugin';
import type { FastifyInstance } from 'fastify';
import type { Config } from '../../shared/config.ts';
import type { Telemetry } from '../../shared/telemetry.ts';
import { OnlineDispatcher } from '../online-dispatcher.ts';

declare module 'fastify' {
  interface FastifyInstance {
    online: OnlineDispatcher;
  }
}

export type OnlineDispatcherPluginOptions = { config: Config; telemetry: Telemetry };

async function onlineDispatcherPlugin(app: FastifyInstance, { config, telemetry }: OnlineDispatcherPluginOptions) {
  const online = new OnlineDispatcher({
    redis: app.redis,
    sharding: app.onlineSharding,
    subscriber: app.redisSubscriber,
    prefix: config.redis.prefix,
    maxRecordsPerJob: config.api.maxBatchRecords,
    maxWaiting: config.api.onlineMaxWaiting,
    drainTimeoutMs: config.api.shutdownTimeoutMs,
    logger: app.log,
    tracer: telemetry.tracer,
  });
  online.start();
  app.decorate('online', online);
  app.addHook('onClose', () => online.close());
}

export default fp(onlineDispatcherPlugin, { name: 'online-dispatcher', dependencies: ['queues'] });
