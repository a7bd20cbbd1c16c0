// The model repository over HTTP: GET /models, GET /models/{name}, and online scoring of any model
// by records, POST /models/{name}[/versions/{version}]/predict and …/predict/batch. A record's
// schema comes from the version's signature (or its manifest's record fields), learnt from the
// workers, so a model dropped into the repository is served without a code change.
import { z } from 'zod';
import type { FastifyInstance, FastifyRequest } from 'fastify';
import type { ZodTypeProvider } from 'fastify-type-provider-zod';
import { ModelNameSchema, VersionSchema } from '../../shared/model-selector.ts';
import { ModelNotFoundError, ValidationError, issuesToDetails } from '../../shared/errors.ts';
import { errorResponses } from '../../shared/schemas/error.ts';
import { PredictQuerySchema } from '../../shared/schemas/prediction.ts';
import type { ModelRegistry, Resolved, Routed } from '../model-registry.ts';
import { shadowSummary } from '../../shared/shadow-stream.ts';
import { ShadowSummarySchema } from '../../shared/schemas/routing.ts';
import { ModelViewSchema } from '../../shared/model-catalog.ts';
import { onlineErrors, routingKey, serializeTrusted, setServerTiming } from './predict.ts';
import { HEADERS, REQUEST_HEADERS } from '../openapi/operation-docs.ts';

// Examples from the committed species model (models/species/1) as a worker answers them.
const SPECIES_VERSION = 'species-softmax-1.0.0+12531022';
const SETOSA = { measurements: [5.1, 3.5, 1.4, 0.2] };
const VIRGINICA = { measurements: [6.3, 2.9, 5.6, 1.8] };
const SETOSA_OUT = {
  probabilities: { setosa: 0.9949504137039185, versicolor: 0.005049610044807196, virginica: 2.5799156144756807e-9 },
  label: 'setosa',
};
const VIRGINICA_OUT = {
  probabilities: { setosa: 0.000010703199222916737, versicolor: 0.08382655680179596, virginica: 0.9161627888679504 },
  label: 'virginica',
};
const SPECIES_VIEW = {
  name: 'species',
  versions: [
    {
      version: 1,
      state: 'loaded',
      display_version: SPECIES_VERSION,
      workers: 1,
      signature: {
        inputs: [{ name: 'measurements', type: 'float32', shape: ['N', 4] }],
        outputs: [
          { name: 'probabilities', type: 'float32', shape: ['N', 3] },
          { name: 'label', type: 'int64', shape: ['N'] },
        ],
      },
      class_labels: { probabilities: ['setosa', 'versicolor', 'virginica'], label: ['setosa', 'versicolor', 'virginica'] },
    },
  ],
  aliases: {},
  default_version: 1,
  problems: [],
};
const timed = { 'Server-Timing': HEADERS.serverTiming };

export type ModelRoutesOptions = {
  /** QUEUE_PREFIX (not `prefix`: Fastify reads that as a route prefix). */
  keyPrefix: string;
  /** Comparisons GET /models/{name}/shadow reads (SHADOW_STREAM_LENGTH). */
  shadowWindow: number;
  predictTimeoutMs: number;
  maxBatchRecords: number;
  bodyLimitBytes: number;
};

const ModelParams = z.strictObject({ name: ModelNameSchema });
const VersionParams = z.strictObject({ name: ModelNameSchema, version: VersionSchema });

const OutputsSchema = z.record(z.string(), z.unknown());
const ModelPredictionSchema = z
  .looseObject({ model_name: z.string(), model_version: z.string() })
  .describe('Each output by name, plus model_name and model_version')
  .meta({ id: 'ModelPrediction' });
const ModelBatchResponseSchema = z
  .object({ results: z.array(OutputsSchema), model_name: z.string(), model_version: z.string(), latency_ms: z.number() })
  .meta({ id: 'ModelBatchResponse' });

const ANY_BODY = z.unknown().describe("One record: the model's inputs by name (GET /models/{name} gives the signature)");
const ANY_BATCH_BODY = z.unknown().describe('{"records": [record, …]}');

/** A named version as asked; a call naming none by the model's routing (canary, shadow) and its champion. */
function resolveFrom(registry: ModelRegistry, params: { name: string; version?: number }, key: () => string): Promise<Routed> {
  return params.version === undefined ? registry.routeFresh(params.name, key()) : registry.resolveFresh(params.name, { version: params.version });
}

/** The records of a body, validated against the resolved version's record schema: 400 naming each bad field. */
function parseRecords(registry: ModelRegistry, resolved: Resolved, body: unknown, batch: number | undefined): Record<string, unknown>[] {
  const record = registry.recordSchema(resolved);
  const schema = batch === undefined ? record : z.strictObject({ records: z.array(record).min(1).max(batch) });
  const parsed = schema.safeParse(body);
  if (!parsed.success) {
    throw new ValidationError(
      `Invalid request body for model ${resolved.name} version ${resolved.version}`,
      issuesToDetails(parsed.error.issues as Parameters<typeof issuesToDetails>[0]),
    );
  }
  return batch === undefined ? [parsed.data as Record<string, unknown>] : (parsed.data as { records: Record<string, unknown>[] }).records;
}

export async function modelRoutes(app: FastifyInstance, options: ModelRoutesOptions) {
  const routes = app.withTypeProvider<ZodTypeProvider>();

  routes.get(
    '/models',
    {
      schema: {
        operationId: 'listModels',
        tags: ['models'],
        summary: 'Models of the repository: versions, aliases, state',
        response: { 200: z.object({ models: z.array(ModelViewSchema) }), ...errorResponses('unauthorized') },
        docs: {
          responses: { 200: { description: 'Every model the live workers report', examples: { species: { value: { models: [SPECIES_VIEW] } } } } },
        },
      },
    },
    async () => ({ models: app.models.list() }),
  );

  routes.get(
    '/models/:name',
    {
      schema: {
        operationId: 'getModel',
        tags: ['models'],
        summary: 'One model, with the signature of each loaded version',
        params: ModelParams,
        response: { 200: ModelViewSchema, ...errorResponses('unauthorized', 'model_not_found') },
        docs: { responses: { 200: { description: 'The model, its versions and their state', examples: { species: { value: SPECIES_VIEW } } } } },
      },
    },
    async (request) => {
      const model = app.models.get(request.params.name);
      if (!model) throw new ModelNotFoundError(`Model ${request.params.name} is not in the repository`);
      return model;
    },
  );

  routes.get(
    '/models/:name/shadow',
    {
      schema: {
        operationId: 'getModelShadow',
        tags: ['models'],
        summary: 'How the shadow version compares with the version that answered, over the newest compared records',
        description:
          "routing.json's shadow scores a share of the calls naming no version after the caller is answered; each record's pair of answers is compared. Per version pair: records compared, agreement of decision (or label), mean and p99 |score difference|.",
        params: ModelParams,
        response: { 200: ShadowSummarySchema, ...errorResponses('unauthorized', 'model_not_found') },
        docs: {
          responses: {
            200: {
              description: 'Per pair of versions, over the newest compared records',
              examples: {
                fraud: {
                  value: {
                    model_name: 'fraud',
                    window: 10000,
                    pairs: [
                      { answered_version: 1, shadow_version: 2, compared: 2000, agreement: 0.9715, mean_difference: 0.0121, p99_difference: 0.1342 },
                    ],
                  },
                },
              },
            },
          },
        },
      },
    },
    async (request) => {
      if (!app.models.get(request.params.name)) throw new ModelNotFoundError(`Model ${request.params.name} is not in the repository`);
      return shadowSummary(app.redis, options.keyPrefix, request.params.name, options.shadowWindow);
    },
  );

  const single = async (request: FastifyRequest<{ Querystring: { timeout_ms?: number } }>, params: { name: string; version?: number }) => {
    const resolved = await resolveFrom(app.models, params, () => routingKey(request, [request.body]));
    const records = parseRecords(app.models, resolved, request.body, undefined);
    const timeoutMs = request.query.timeout_ms ?? options.predictTimeoutMs;
    const result = await app.online.submit(resolved.name, resolved.version, records, timeoutMs, { shadow: resolved.shadow?.version });
    return { result, body: { ...result.outputs[0], model_name: result.modelName, model_version: result.modelVersion } };
  };

  const batch = async (request: FastifyRequest<{ Querystring: { timeout_ms?: number } }>, params: { name: string; version?: number }) => {
    const started = performance.now();
    const resolved = await resolveFrom(app.models, params, () => routingKey(request, []));
    const records = parseRecords(app.models, resolved, request.body, options.maxBatchRecords);
    const timeoutMs = request.query.timeout_ms ?? options.predictTimeoutMs;
    const result = await app.online.submit(resolved.name, resolved.version, records, timeoutMs, { shadow: resolved.shadow?.version });
    const body = {
      results: result.outputs,
      model_name: result.modelName,
      model_version: result.modelVersion,
      latency_ms: Number((performance.now() - started).toFixed(3)),
    };
    return { result, body };
  };

  const common = { bodyLimit: options.bodyLimitBytes, serializerCompiler: serializeTrusted };
  for (const [path, params] of [
    ['/models/:name', ModelParams],
    ['/models/:name/versions/:version', VersionParams],
  ] as const) {
    // Only a call naming no version is routed by routing.json.
    const routed = path.includes('versions') ? {} : { parameters: [REQUEST_HEADERS.routingKey] };
    routes.post(
      `${path}/predict`,
      {
        ...common,
        schema: {
          operationId: path.includes('versions') ? 'predictModelVersion' : 'predictModel',
          tags: ['models'],
          docs: {
            ...routed,
            requestExamples: { setosa: { value: SETOSA } },
            responses: {
              200: {
                description: 'Each output by name, and the version that scored it',
                headers: timed,
                examples: { setosa: { value: { ...SETOSA_OUT, model_name: 'species', model_version: SPECIES_VERSION } } },
              },
            },
          },
          summary: path.includes('versions')
            ? 'Score one record with one version of a model'
            : "Score one record with a model's champion (else latest) version",
          params,
          body: ANY_BODY,
          querystring: PredictQuerySchema,
          response: { 200: ModelPredictionSchema, ...onlineErrors },
        },
      },
      async (request, reply) => {
        const { result, body } = await single(request, request.params);
        setServerTiming(reply, result);
        return body;
      },
    );
    routes.post(
      `${path}/predict/batch`,
      {
        ...common,
        schema: {
          operationId: path.includes('versions') ? 'predictModelVersionBatch' : 'predictModelBatch',
          tags: ['models'],
          docs: {
            ...routed,
            requestExamples: { two: { value: { records: [SETOSA, VIRGINICA] } } },
            responses: {
              200: {
                description: 'One result per record, in input order',
                headers: timed,
                examples: {
                  two: { value: { results: [SETOSA_OUT, VIRGINICA_OUT], model_name: 'species', model_version: SPECIES_VERSION, latency_ms: 2.8 } },
                },
              },
            },
          },
          summary: `Score 1..${options.maxBatchRecords} records of a model in one queue job; results in input order`,
          params,
          body: ANY_BATCH_BODY,
          querystring: PredictQuerySchema,
          response: { 200: ModelBatchResponseSchema, ...onlineErrors },
        },
      },
      async (request, reply) => {
        const { result, body } = await batch(request, request.params);
        setServerTiming(reply, result);
        return body;
      },
    );
  }
}
