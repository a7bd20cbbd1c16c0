// POST /predict and POST /predict/batch, fraud's routes: validate, resolve fraud's version
// (its champion, else latest: the registry's one rule), hand to that version's queue, answer
// within the timeout.
import type { FastifyInstance, FastifyReply } from 'fastify';
import type { ZodTypeProvider } from 'fastify-type-provider-zod';
import { FraudRecordSchema } from '../../shared/schemas/record.ts';
import { BatchResponseSchema, PredictionSchema, PredictQuerySchema, batchRequestSchema } from '../../shared/schemas/prediction.ts';
import { errorResponses } from '../../shared/schemas/error.ts';
import type { Decision } from '../../shared/schemas/prediction.ts';
import { ModelError } from '../../shared/errors.ts';
import type { CallResult } from '../online-dispatcher.ts';
import { HEADERS } from '../openapi/operation-docs.ts';
import { batchRequestExamples, batchResponseExamples, predictRequestExamples, predictResponseExamples } from '../openapi/examples.ts';

/** The model /predict scores with. */
export const FRAUD_MODEL = 'fraud';

export type PredictRoutesOptions = { predictTimeoutMs: number; maxBatchRecords: number; bodyLimitBytes: number };

/** The errors of an online call, for /predict and the /models routes alike. */
export const onlineErrors = errorResponses(
  'validation_error',
  'unauthorized',
  'payload_too_large',
  'unsupported_media_type',
  'overloaded',
  'model_error',
  'internal_error',
  'unavailable',
  'timeout',
  'model_not_found',
  'model_unavailable',
);

const timed = { 'Server-Timing': HEADERS.serverTiming };

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
        operationId: 'predict',
        tags: ['online'],
        summary: 'Score one record',
        description: 'The record goes through the queue to a worker; the answer names the model version that scored it.',
        body: FraudRecordSchema,
        querystring: PredictQuerySchema,
        response: { 200: PredictionSchema, ...onlineErrors },
        docs: {
          requestExamples: predictRequestExamples,
          responses: { 200: { description: 'The score and its decision', headers: timed, examples: predictResponseExamples } },
        },
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
        operationId: 'predictBatch',
        tags: ['online'],
        summary: `Score 1..${options.maxBatchRecords} records in one queue job; results in input order`,
        body: batchRequestSchema(options.maxBatchRecords),
        querystring: PredictQuerySchema,
        response: { 200: BatchResponseSchema, ...onlineErrors },
        docs: {
          requestExamples: batchRequestExamples,
          responses: { 200: { description: 'One result per record, in input order', headers: timed, examples: batchResponseExamples } },
        },
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
