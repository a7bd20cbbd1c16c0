// POST /predict and POST /predict/batch: the default model's (DEFAULT_MODEL) /models/{name}/predict
// with the seed's response shape: validate at the edge by the contract's PredictRequest, resolve the
// version (the registry's one rule), hand to that version's queue, answer within the timeout. The
// reply's fields are the ones the version's manifest names (its probability field and `decision`),
// with model_version beside them; nothing here knows which model it is.
import type { FastifyInstance, FastifyReply, FastifyRequest } from 'fastify';
import type { ZodTypeProvider } from 'fastify-type-provider-zod';
import { FraudRecordSchema } from '../../shared/schemas/record.ts';
import {
  BatchResponseSchema,
  PredictionSchema,
  PredictQuerySchema,
  batchRequestSchema,
  type BatchResponse,
  type Prediction,
} from '../../shared/schemas/prediction.ts';
import { errorResponses } from '../../shared/schemas/error.ts';
import type { CallResult } from '../online-dispatcher.ts';
import { HEADERS, REQUEST_HEADERS } from '../openapi/operation-docs.ts';
import { batchRequestExamples, batchResponseExamples, predictRequestExamples, predictResponseExamples } from '../openapi/examples.ts';

export type PredictRoutesOptions = {
  /** The model /predict scores with (DEFAULT_MODEL). */
  model: string;
  predictTimeoutMs: number;
  maxBatchRecords: number;
  bodyLimitBytes: number;
};

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

/**
 * The replies are serialized as they come: the worker built them from the version's outputs, and
 * the response schemas describe them for the docs. Validating them again here would be a fourth
 * check of data the service made itself.
 */
export const serializeTrusted = () => (data: unknown) => JSON.stringify(data);

/**
 * What a call naming no version is routed by (routing.json's canary and shadow shares): the
 * X-Routing-Key header, else a one-record call's `id`, else the request id.
 */
export function routingKey(request: FastifyRequest, records: readonly unknown[]): string {
  const header = routingKeyHeader(request);
  if (header !== undefined) return header;
  const id = records.length === 1 ? (records[0] as { id?: unknown } | undefined)?.id : undefined;
  return typeof id === 'string' && id !== '' ? id : request.id;
}

/** The X-Routing-Key header, when the client sent one non-empty value. */
export function routingKeyHeader(request: FastifyRequest): string | undefined {
  const header = request.headers['x-routing-key'];
  return typeof header === 'string' && header !== '' ? header : undefined;
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
      serializerCompiler: serializeTrusted,
      schema: {
        operationId: 'predict',
        tags: ['online'],
        summary: 'Score one record',
        description: 'The record goes through the queue to a worker; the answer names the model version that scored it.',
        body: FraudRecordSchema,
        querystring: PredictQuerySchema,
        response: { 200: PredictionSchema, ...onlineErrors },
        docs: {
          parameters: [REQUEST_HEADERS.routingKey],
          requestExamples: predictRequestExamples,
          responses: { 200: { description: 'The score and its decision', headers: timed, examples: predictResponseExamples } },
        },
      },
    },
    async (request, reply) => {
      const timeoutMs = request.query.timeout_ms ?? options.predictTimeoutMs;
      const routed = await app.models.routeFresh(options.model, routingKey(request, [request.body]));
      const result = await app.online.submit(options.model, routed.version, [request.body], timeoutMs, { shadow: routed.shadow?.version });
      setServerTiming(reply, result);
      return { ...result.outputs[0], model_version: result.modelVersion } as Prediction;
    },
  );

  routes.post(
    '/predict/batch',
    {
      bodyLimit: options.bodyLimitBytes,
      serializerCompiler: serializeTrusted,
      schema: {
        operationId: 'predictBatch',
        tags: ['online'],
        summary: `Score 1..${options.maxBatchRecords} records in one queue job; results in input order`,
        body: batchRequestSchema(options.maxBatchRecords),
        querystring: PredictQuerySchema,
        response: { 200: BatchResponseSchema, ...onlineErrors },
        docs: {
          parameters: [REQUEST_HEADERS.routingKey],
          requestExamples: batchRequestExamples,
          responses: { 200: { description: 'One result per record, in input order', headers: timed, examples: batchResponseExamples } },
        },
      },
    },
    async (request, reply) => {
      const started = performance.now();
      const timeoutMs = request.query.timeout_ms ?? options.predictTimeoutMs;
      const routed = await app.models.routeFresh(options.model, routingKey(request, request.body.records));
      const result = await app.online.submit(options.model, routed.version, request.body.records, timeoutMs, { shadow: routed.shadow?.version });
      setServerTiming(reply, result);
      return {
        results: result.outputs as BatchResponse['results'],
        model_version: result.modelVersion,
        latency_ms: Number((performance.now() - started).toFixed(3)),
      };
    },
  );
}
