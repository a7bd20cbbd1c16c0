// POST /predict and POST /predict/batch, fraud's routes: validate, resolve fraud's version
// (its champion, else latest: the registry's one rule), hand to that version's queue, answer
// within the timeout.
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
import type { Decision } from '../../shared/schemas/prediction.ts';
import { ModelError } from '../../shared/errors.ts';
import type { CallResult } from '../online-dispatcher.ts';

/** The model /predict scores with. */
export const FRAUD_MODEL = 'fraud';

export type PredictRoutesOptions = { predictTimeoutMs: number; maxBatchRecords: number; bodyLimitBytes: number };

export const errorResponses = {
  400: ErrorBodySchema,
  401: ErrorBodySchema,
  413: ErrorBodySchema,
  415: ErrorBodySchema,
  429: ErrorBodySchema,
  // model_not_found: no fraud model in the repository.
  404: ErrorBodySchema,
  // model_error: the model failed on the call's records.
  500: ErrorBodySchema,
  503: ErrorBodySchema,
  504: ErrorBodySchema,
};

/** Fraud's probabilities and decisions; a fraud version without a decision policy cannot answer /predict. */
function fraudScores(result: CallResult): { probabilities: number[]; decisions: Decision[] } {
  if (result.probabilities) return { probabilities: result.probabilities, decisions: result.decisions };
  throw new ModelError(`model ${result.modelName} version ${result.modelVersion} gives no fraud_probability and decision`);
}

/** Server-Timing tells a client where its milliseconds went without a tracing backend. */
export function setServerTiming(reply: FastifyReply, result: CallResult): void {
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
      const { version } = await app.models.resolveFresh(FRAUD_MODEL);
      const result = await app.online.submit(FRAUD_MODEL, version, [request.body], timeoutMs);
      const { probabilities, decisions } = fraudScores(result);
      setServerTiming(reply, result);
      return {
        fraud_probability: probabilities[0]!,
        decision: decisions[0]!,
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
      const { version } = await app.models.resolveFresh(FRAUD_MODEL);
      const result = await app.online.submit(FRAUD_MODEL, version, request.body.records, timeoutMs);
      const { probabilities, decisions } = fraudScores(result);
      setServerTiming(reply, result);
      return {
        results: probabilities.map((p, i) => ({ fraud_probability: p, decision: decisions[i]! })),
        model_version: result.modelVersion,
        latency_ms: Number((performance.now() - started).toFixed(3)),
      };
    },
  );
}
