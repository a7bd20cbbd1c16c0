// buildApp(): the api as a Fastify application, every plugin and route registered in order.
// It never listens; main.ts does, and tests use inject() or a real port.
import Fastify, { LogController, type FastifyInstance } from 'fastify';
import { serializerCompiler, validatorCompiler } from 'fastify-type-provider-zod';
import { randomUUID } from 'node:crypto';
import type { Config } from '../shared/config.ts';
import { loggerOptions } from '../shared/logger.ts';
import type { Telemetry } from '../shared/telemetry.ts';
import errorsPlugin, { clientErrorHandler, errorsCounter, frameworkErrors } from './plugins/errors.ts';
import bodyTimeoutPlugin from './plugins/body-timeout.ts';
import authPlugin from './plugins/auth.ts';
import openapiPlugin from './plugins/openapi.ts';
import queuesPlugin from './plugins/queues.ts';
import onlineDispatcherPlugin from './plugins/online-dispatcher.ts';
import modelRegistryPlugin from './plugins/model-registry.ts';
import observabilityPlugin from './plugins/observability.ts';
import adminPlugin from './plugins/admin.ts';
import { predictRoutes } from './routes/predict.ts';
import { healthRoutes } from './routes/health.ts';
import { jobsRoutes } from './routes/jobs.ts';
import { modelRoutes } from './routes/models.ts';
import { oipRestRoutes } from './oip/rest.ts';
import { ServiceBackend } from './oip/service-backend.ts';
import type { InferenceBackend } from './oip/backend.ts';
import { countHttpInferenceCalls, grpcAroundCall, inferenceCallsCounter } from './inference-calls.ts';

declare module 'fastify' {
  interface FastifyInstance {
    /** The Open Inference Protocol's view of the service: REST here, gRPC in main.ts, both over it. */
    oip: { backend: InferenceBackend; aroundCall: ReturnType<typeof grpcAroundCall> };
  }
}

export type AppDeps = { config: Config; telemetry: Telemetry };

export async function buildApp({ config, telemetry }: AppDeps): Promise<FastifyInstance> {
  const app = Fastify({
    logger: loggerOptions('api', config.logLevel),
    genReqId: () => randomUUID(),
    requestIdHeader: 'x-request-id',
    // The same name as the error body's request_id, so a client's error leads to its log lines.
    logController: new LogController({ requestIdLogLabel: 'request_id' }),
    bodyLimit: config.api.bodyLimitBytes,
    // A drained api answers the requests in flight, then closes idle keep-alive sockets.
    forceCloseConnections: 'idle',
    return503OnClosing: true,
    // Every answer in the contract's shape, even to requests Fastify cannot route or Node cannot parse.
    clientErrorHandler,
    frameworkErrors,
    // The longest path parameter is a job id (64 characters); a longer one names nothing (404).
    routerOptions: { maxParamLength: 64 },
    // Headers must arrive within HEADERS_TIMEOUT_MS. The whole request's backstop is the longest
    // body time plus that; the body-timeout plugin cuts each route off at its own time first.
    requestTimeout: config.api.jobBodyTimeoutMs + config.api.headersTimeoutMs,
    http: { headersTimeout: config.api.headersTimeoutMs, connectionsCheckingInterval: 1000 },
  });
  app.setValidatorCompiler(validatorCompiler);
  app.setSerializerCompiler(serializerCompiler);
  // JSON only by default; POST /jobs adds its own NDJSON and CSV parsers in its scope.
  app.removeContentTypeParser('text/plain');

  // While draining, answers to the calls in flight close their keep-alive sockets, so
  // close() does not wait for clients to hang up (Fastify closes only sockets idle at the start).
  let draining = false;
  app.addHook('preClose', async () => {
    draining = true;
  });
  app.addHook('onSend', async (_request, reply) => {
    if (draining) reply.header('connection', 'close');
  });

  await app.register(errorsPlugin, { telemetry });
  await app.register(bodyTimeoutPlugin, { bodyTimeoutMs: config.api.bodyTimeoutMs });
  await app.register(authPlugin, { apiKeys: config.api.apiKeys, adminApiKeys: config.api.adminApiKeys });
  await app.register(openapiPlugin, { docsPublic: config.api.docsPublic });
  await app.register(queuesPlugin, { config, telemetry });
  await app.register(onlineDispatcherPlugin, { config, telemetry });
  await app.register(modelRegistryPlugin, { config });
  await app.register(observabilityPlugin, { config, telemetry });
  await app.register(adminPlugin, {
    apiKeys: config.api.apiKeys,
    adminApiKeys: config.api.adminApiKeys,
    showJobData: config.api.adminShowJobData,
  });
  // keyPrefix, not prefix: Fastify reads a `prefix` option as a route prefix.
  await app.register(healthRoutes, { keyPrefix: config.redis.prefix, telemetry });
  await app.register(predictRoutes, {
    model: config.defaultModel,
    predictTimeoutMs: config.api.predictTimeoutMs,
    maxBatchRecords: config.api.maxBatchRecords,
    bodyLimitBytes: config.api.bodyLimitBytes,
  });
  await app.register(modelRoutes, {
    keyPrefix: config.redis.prefix,
    shadowWindow: config.shadow.streamLength,
    predictTimeoutMs: config.api.predictTimeoutMs,
    maxBatchRecords: config.api.maxBatchRecords,
    bodyLimitBytes: config.api.bodyLimitBytes,
  });
  await app.register(jobsRoutes, { config });

  const backend = new ServiceBackend({ registry: app.models, dispatcher: app.online, redis: app.redis, maxBatch: config.api.maxBatchRecords });
  const calls = inferenceCallsCounter(telemetry.meter);
  countHttpInferenceCalls(app, calls);
  app.decorate('oip', { backend, aroundCall: grpcAroundCall(telemetry.tracer, calls, errorsCounter(telemetry.meter), telemetry.tracing) });
  await app.register(oipRestRoutes, {
    backend,
    timeoutMs: config.api.predictTimeoutMs,
    maxBatch: config.api.maxBatchRecords,
    bodyLimitBytes: config.api.bodyLimitBytes,
  });
  return app;
}
