// The Open Inference Protocol's HTTP/REST endpoints under /v2, as a Fastify plugin over an
// InferenceBackend. Errors on these routes take the protocol's shape {"error": "…"}, not the
// service's own error body: the plugin has its own error and not-found handlers.
import type { FastifyInstance, FastifyReply, FastifyRequest } from 'fastify';
import { AppError } from '../../shared/errors.ts';
import type { InferenceBackend, InferResult, ModelMetadata } from './backend.ts';
import { InvalidArgumentError, OipError, isUnexpected, toOipError } from './errors.ts';
import { addInput, checkInputs, checkRequestedOutputs, jsonData, selectOutputs, tensorFromJson, type TensorMap } from './tensors.ts';
import { OIP_DOCS, OIP_ROUTED_INFER_DOCS, oipSchema } from './rest-docs.ts';
import { errorCodeOf } from '../inference-calls.ts';
import { routingKeyHeader } from '../routes/predict.ts';

export type OipRestOptions = {
  backend: InferenceBackend;
  /** How long an inference call may wait for its answer: the job's deadline. */
  timeoutMs: number;
  /** Largest batch dimension a call may carry. */
  maxBatch: number;
  /** Body limit of the infer routes (the api's default limit when absent). */
  bodyLimitBytes?: number;
};

type ModelParams = { model: string; version?: string };

/** The protocol's `parameters` of an inference response: the call's timings. */
export function timingParameters(result: InferResult) {
  const t = result.timings;
  return {
    queue_ms: t.queueMs,
    batch_wait_ms: t.batchWaitMs,
    inference_ms: t.inferenceMs,
    batch_records: t.batchRecords,
  };
}

function isObject(value: unknown): value is Record<string, unknown> {
  return typeof value === 'object' && value !== null && !Array.isArray(value);
}

type InferBody = { id?: string; inputs: Record<string, unknown>[]; outputs: string[] };

/** The inference request's structure; tensors themselves are checked by the codec. */
function parseInferBody(body: unknown): InferBody {
  if (!isObject(body)) throw new InvalidArgumentError('the body must be a JSON object with "inputs"');
  const { id, parameters, inputs, outputs } = body;
  if (id !== undefined && typeof id !== 'string') throw new InvalidArgumentError('"id" must be a string');
  if (parameters !== undefined && !isObject(parameters)) throw new InvalidArgumentError('"parameters" must be an object');
  if (!Array.isArray(inputs)) throw new InvalidArgumentError('"inputs" must be an array of tensors');
  inputs.forEach((input, i) => {
    if (!isObject(input)) throw new InvalidArgumentError(`inputs[${i}] must be an object`);
    for (const field of ['name', 'shape', 'datatype', 'data']) {
      if (input[field] === undefined) throw new InvalidArgumentError(`inputs[${i}] has no "${field}"`);
    }
    if (input.parameters !== undefined && !isObject(input.parameters)) {
      throw new InvalidArgumentError(`inputs[${i}].parameters must be an object`);
    }
  });
  if (outputs !== undefined && !Array.isArray(outputs)) throw new InvalidArgumentError('"outputs" must be an array');
  const names = (outputs ?? []).map((output: unknown, i: number) => {
    if (!isObject(output) || typeof output.name !== 'string') throw new InvalidArgumentError(`outputs[${i}] needs a "name"`);
    return output.name;
  });
  return { id, inputs: inputs as Record<string, unknown>[], outputs: names };
}

function jsonInputs(body: InferBody): TensorMap {
  const inputs: TensorMap = new Map();
  for (const input of body.inputs) {
    addInput(inputs, input.name, (name) => tensorFromJson(name, input.datatype, input.shape, input.data));
  }
  return inputs;
}

/** Aborted when the client closes the connection before its answer is written. */
function clientGone(reply: FastifyReply): AbortSignal {
  const controller = new AbortController();
  reply.raw.once('close', () => {
    if (!reply.raw.writableFinished) controller.abort();
  });
  return controller.signal;
}

function sendError(request: FastifyRequest, reply: FastifyReply, error: unknown) {
  const oip = toOipError(error);
  // A caller that left is not an error of the service (the errors plugin does not count a client gone either).
  if (oip.kind !== 'cancelled') request.errorCode = errorCodeOf(error);
  if (isUnexpected(error)) request.log.error({ err: error, request_id: request.id }, 'unhandled error');
  // Statuses come from the one error map (Fastify's own client errors keep theirs: 413, 415).
  const status = oip.httpStatus;
  if (error instanceof AppError) for (const [name, value] of Object.entries(error.headers)) reply.header(name, value);
  if (oip.retryAfterSeconds !== undefined) reply.header('retry-after', String(oip.retryAfterSeconds));
  return reply.code(status).type('application/json').send({ error: oip.message });
}

async function v2Routes(app: FastifyInstance, options: OipRestOptions) {
  const { backend, timeoutMs, maxBatch } = options;
  const open = { public: true };

  app.setErrorHandler((error, request, reply) => sendError(request, reply, error));
  // A refused key too is answered in the protocol's shape, by the handler above.
  app.addHook('onRoute', (route) => {
    route.config = { ...route.config, ownErrorShape: true };
  });

  // Clients of the protocol do not all send a JSON content type; like Triton and KServe, these
  // routes read the body as JSON whatever its content type says.
  app.removeAllContentTypeParsers();
  app.addContentTypeParser('*', { parseAs: 'string' }, app.getDefaultJsonParser('error', 'error'));
  app.addHook('preParsing', async (request) => {
    if (request.headers['inference-header-content-length'] !== undefined) {
      throw new InvalidArgumentError(
        'The binary tensor data extension is not supported: send tensors as JSON "data" (tritonclient: binary_data=False)',
      );
    }
  });
  app.setNotFoundHandler((request, reply) => reply.code(404).send({ error: `No route ${request.method} ${request.url.split('?')[0]}` }));

  const serverMetadata = async () => backend.serverMetadata();
  app.get('/', { prefixTrailingSlash: 'no-slash', ...oipSchema('oipServerMetadata', 'Server metadata', OIP_DOCS.serverMetadata) }, serverMetadata);
  // Clients differ on the slash; the document names GET /v2 once.
  app.get('/', { prefixTrailingSlash: 'slash', schema: { hide: true } }, serverMetadata);

  // Probes read the status; the bodies are those of inference_rest.md ($live_server_response, …).
  app.get('/health/live', { config: open, ...oipSchema('oipServerLive', 'Server live', OIP_DOCS.serverLive) }, async () => ({ live: true }));

  app.get('/health/ready', { config: open, ...oipSchema('oipServerReady', 'Server ready', OIP_DOCS.serverReady) }, async (request, reply) => {
    if (!(await backend.isReady())) return sendError(request, reply, new OipError('unavailable', 'The server is not ready'));
    return { ready: true };
  });

  const metadata = async (request: FastifyRequest) => {
    const { model, version } = request.params as ModelParams;
    const meta = await backend.modelMetadata(model, version);
    return {
      name: meta.name,
      versions: meta.versions,
      platform: meta.platform,
      inputs: meta.inputs.map(({ name, datatype, shape }) => ({ name, datatype, shape })),
      outputs: meta.outputs.map(({ name, datatype, shape }) => ({ name, datatype, shape })),
    };
  };
  app.get('/models/:model', oipSchema('oipModelMetadata', 'Model metadata', OIP_DOCS.modelMetadata), metadata);
  app.get('/models/:model/versions/:version', oipSchema('oipModelVersionMetadata', 'Model version metadata', OIP_DOCS.modelMetadata), metadata);

  const ready = async (request: FastifyRequest, reply: FastifyReply) => {
    const { model, version } = request.params as ModelParams;
    if (!(await backend.modelReady(model, version))) {
      return sendError(request, reply, new OipError('unavailable', `Model "${model}" is not ready`));
    }
    return { name: model, ready: true };
  };
  app.get('/models/:model/ready', oipSchema('oipModelReady', 'Model ready', OIP_DOCS.modelReady), ready);
  app.get('/models/:model/versions/:version/ready', oipSchema('oipModelVersionReady', 'Model version ready', OIP_DOCS.modelReady), ready);

  const infer = async (request: FastifyRequest, reply: FastifyReply) => {
    const { model, version } = request.params as ModelParams;
    const deadlineMs = Date.now() + timeoutMs;
    const body = parseInferBody(request.body);
    const meta: ModelMetadata = await backend.modelMetadata(model, version);
    const inputs = jsonInputs(body);
    checkInputs(inputs, meta, { maxBatch });
    const requested = checkRequestedOutputs(body.outputs, meta);
    const result = await backend.infer(model, version, inputs, {
      deadlineMs,
      checked: meta,
      ...(requested && { outputs: requested }),
      signal: clientGone(reply),
      routingKey: routingKeyHeader(request) ?? body.id ?? request.id,
    });
    return {
      model_name: result.modelName,
      model_version: result.modelVersion,
      ...(body.id !== undefined && { id: body.id }),
      parameters: timingParameters(result),
      outputs: selectOutputs(result.outputs, requested, meta).map(([name, tensor]) => ({
        name,
        datatype: tensor.datatype,
        shape: tensor.shape,
        data: jsonData(tensor),
      })),
    };
  };
  const limit = options.bodyLimitBytes ? { bodyLimit: options.bodyLimitBytes } : {};
  app.post('/models/:model/infer', { ...limit, ...oipSchema('oipModelInfer', 'Inference', OIP_ROUTED_INFER_DOCS) }, infer);
  app.post(
    '/models/:model/versions/:version/infer',
    { ...limit, ...oipSchema('oipModelVersionInfer', 'Inference with a model version', OIP_DOCS.infer) },
    infer,
  );
}

/** Registers GET /v2, /v2/health/*, /v2/models/… and POST …/infer. */
export async function oipRestRoutes(app: FastifyInstance, options: OipRestOptions) {
  await app.register(v2Routes, { ...options, prefix: '/v2' });
}
