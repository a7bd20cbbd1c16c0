// Liveness, readiness and metrics: the routes an orchestrator and Prometheus call, open
// even when API_KEYS is set.
import { z } from 'zod';
import type { FastifyInstance } from 'fastify';
import type { ZodTypeProvider } from 'fastify-type-provider-zod';
import { errorResponses } from '../../shared/schemas/error.ts';
import { UnavailableError } from '../../shared/errors.ts';
import { isRedisReady, readRedisMemory } from '../../shared/redis.ts';
import { readLiveWorkers } from '../../shared/worker-registry.ts';
import type { Telemetry } from '../../shared/telemetry.ts';
import { EXAMPLE_MODEL_VERSION } from '../openapi/examples.ts';

export type HealthRoutesOptions = { keyPrefix: string; telemetry: Telemetry };

const HealthSchema = z.object({ status: z.literal('ok') }).meta({ id: 'Health' });

const ReadySchema = z
  .object({
    status: z.literal('ready'),
    workers: z.number().int().describe('Workers that sent a heartbeat recently'),
    model_version: z.string().nullable().describe('Fraud model version of the live workers (null when none)'),
    models: z.record(z.string(), z.array(z.number().int())).describe('Per model, the versions held by at least one live worker'),
    redis_memory: z
      .object({
        used_bytes: z.number().int(),
        max_bytes: z.number().int().describe('maxmemory; 0 means no limit'),
        full: z.boolean().describe('Redis is at maxmemory: new jobs are refused with 507 until memory is freed'),
      })
      .describe("Redis's memory against its limit"),
  })
  .meta({ id: 'Ready' });

export async function healthRoutes(app: FastifyInstance, options: HealthRoutesOptions) {
  const routes = app.withTypeProvider<ZodTypeProvider>();
  const open = { public: true };

  routes.get(
    '/health',
    {
      config: open,
      schema: {
        operationId: 'health',
        tags: ['health'],
        summary: 'Liveness: the process runs',
        response: { 200: HealthSchema },
        docs: { responses: { 200: { description: 'The process runs', examples: { ok: { value: { status: 'ok' } } } } } },
      },
    },
    async () => ({ status: 'ok' as const }),
  );

  routes.get(
    '/ready',
    {
      config: open,
      schema: {
        operationId: 'ready',
        tags: ['health'],
        summary: 'Readiness: Redis answers',
        response: { 200: ReadySchema, ...errorResponses('unavailable') },
        docs: {
          responses: {
            200: {
              description: 'Redis answers; the live workers and their model version',
              examples: {
                ready: {
                  value: {
                    status: 'ready',
                    workers: 2,
                    model_version: EXAMPLE_MODEL_VERSION,
                    redis_memory: { used_bytes: 48_211_968, max_bytes: 0, full: false },
                  },
                },
              },
            },
          },
        },
      },
    },
    async () => {
      if (!isRedisReady(app.redis)) throw new UnavailableError();
      try {
        const [workers, memory] = await Promise.all([readLiveWorkers(app.redis, options.keyPrefix), readRedisMemory(app.redis)]);
        const held = workers.filter((w) => w.modelVersion !== 'none').map((w) => w.modelVersion);
        const versions = [...new Set(held)].sort();
        return {
          status: 'ready' as const,
          workers: workers.length,
          model_version: versions.join(',') || null,
          models: app.models.held(),
          // A full Redis still serves status, results and reads: the api stays ready, and says so.
          redis_memory: { used_bytes: memory.usedBytes, max_bytes: memory.maxBytes, full: memory.full },
        };
      } catch {
        throw new UnavailableError();
      }
    },
  );

  app.get('/metrics', { config: open, schema: { hide: true } }, (request, reply) => {
    reply.hijack();
    options.telemetry.serveMetrics(request.raw, reply.raw);
  });
}
