// POST /predict and POST /predict/batch: validate, hand to the queue, answer within the timeout.
import type { FastifyInstance, FastifyReply } from 'fastify';
import type { ZodTypeProvider } from 'fastify-type-provider-zod';
import { FraudRecordSchema } from '../../shared/schemas/record.ts';
import {
  BatchResponseSchema,
  PredictionSchema,
  PredictQuerySchema,
  batchRequestSchema,
} from '../../shared/schemas/prediction.ts';
import { ErrorBodySchema } from '../../shared/schemas/error.ts';
import type { CallResult } from '../online-dispatcher.ts';

export type PredictRoutesOptions = { predictTimeoutMs: number; maxBatchRecords: number; bodyLimitBytes: number };

const errorResponses = {
  400: ErrorBodySchema,
  401: ErrorBodySchema,
  413: ErrorBodySchema,
  415: ErrorBodySchema,
  429: ErrorBodySchema,
  // model_error: the model failed on the call's records.
  500: ErrorBodySchema,
  503: ErrorBodySchema,
  504: ErrorBodySchema,
};

/** Server-Timing tells a client where its milliseconds went without a tracing backend. */
function setServerTiming(reply: FastifyReply, result: CallResult): void {
  const t = result.timings;
  reply.header(
    'server-timing',
    `queue;dur=${t.queue_ms.toFixed(2)}, batch;dur=${t.batch_wait_ms.toFixed(2)}, inference;dur=${t.inference_ms.toFixed(2)}`,
  );
}

export async function predictRoutes(app: FastifyInstance, options: PredictRoutesOptions) {
  const routes = app.withTypeProvider<ZodTypeProvider>();

  routes.post(
    '/predict',
    {
      bodyLimit: options.bodyLimitBytes,
      schema: {
        summary: 'Score one record',
        body: FraudRecordSchema,
        querystring: PredictQuerySchema,
        response: { 200: PredictionSchema, ...errorResponses },
      },
    },
    async (request, reply) => {
      const timeoutMs = request.query.timeout_ms ?? options.predictTimeoutMs;
      const result = await app.online.submit([request.body], timeoutMs);
      setServerTiming(reply, result);
      return {
        fraud_probability: result.probabilities[0]!,
        decision: result.decisions[0]!,
        model_version: result.modelVersion,
      };
    },
  );

  routes.post(
    '/predict/batch',
    {
      bodyLimit: options.bodyLimitBytes,
      schema: {
        summary: `Score 1..${options.maxBatchRecords} records in one queue job; results in input order`,
        body: batchRequestSchema(options.maxBatchRecords),
        querystring: PredictQuerySchema,
        response: { 200: BatchResponseSchema, ...errorResponses },
      },
    },
    async (request, reply) => {
      const started = performance.now();
      const timeoutMs = request.query.timeout_ms ?? options.predictTimeoutMs;
      const result = await app.online.submit(request.body.records, timeoutMs);
      setServerTiming(reply, result);
      return {
        results: result.probabilities.map((p, i) => ({ fraud_probability: p, decision: result.decisions[i]! })),
        model_version: result.modelVersion,
        latency_ms: Number((performance.now() - started).toFixed(3)),
      };
    },
  );
}
