// The model registry as a plugin: refreshed from the live workers' snapshots every second (and at
// once when a worker announces a change), decorated as app.models. Each refresh makes the
// producers of the versions held, so queue metrics show them before their first call.
import fp from 'fastify-plugin';
import type { FastifyInstance } from 'fastify';
import type { Config } from '../../shared/config.ts';
import { ModelRegistry } from '../model-registry.ts';

declare module 'fastify' {
  interface FastifyInstance {
    models: ModelRegistry;
  }
}

export type ModelRegistryPluginOptions = { config: Config };

async function modelRegistryPlugin(app: FastifyInstance, { config }: ModelRegistryPluginOptions) {
  const registry = new ModelRegistry({
    redis: app.redis,
    subscriber: app.redisSubscriber,
    prefix: config.redis.prefix,
    logger: app.log,
    onRefresh: (r) => {
      for (const [name, versions] of Object.entries(r.held())) for (const v of versions) app.online.producer(name, v);
    },
  });
  // The first read is not awaited: an api whose Redis is away still starts, and answers 503.
  void registry.start();
  app.decorate('models', registry);
  app.addHook('onClose', () => registry.close());
}

export default fp(modelRegistryPlugin, { name: 'model-registry', dependencies: ['queues', 'online-dispatcher'] });
