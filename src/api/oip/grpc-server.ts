// The Open Inference Protocol's gRPC service (inference.GRPCInferenceService) and gRPC's
// standard health service, served by @grpc/grpc-js over an InferenceBackend. The call's
// deadline becomes the job's deadline; timings travel in the response's parameters and in
// trailing metadata; close() drains calls in flight before it forces anything.
import * as grpc from '@grpc/grpc-js';
import * as protoLoader from '@grpc/proto-loader';
import { createHash, timingSafeEqual } from 'node:crypto';
import type { InferenceBackend, InferResult } from './backend.ts';
import { decodeInferRequest, encodeInferResponse, type InferRequest, type InferResponse } from './infer-codec.ts';
import { HEALTH_PROTO_PATH, OIP_PROTO_PATH, PROTO_LOADER_OPTIONS } from './protos.ts';
import { InvalidArgumentError, OipError, UnauthenticatedError, isUnexpected, toOipError } from './errors.ts';
import {
  CONTENTS_FIELDS,
  addInput,
  checkInputs,
  checkRequestedOutputs,
  contentsOf,
  rawOf,
  selectOutputs,
  tensorFromContents,
  tensorFromRaw,
  type GrpcTensorContents,
  type TensorMap,
} from './tensors.ts';

export type OipGrpcOptions = {
  backend: InferenceBackend;
  host: string;
  /** 0 picks a free port; the server reports the one it bound. */
  port: number;
  /** Bearer keys; empty leaves the service open. */
  apiKeys: readonly string[];
  /** The job deadline of a call that comes without a gRPC deadline. */
  timeoutMs: number;
  /** A longer client deadline is cut to this. */
  maxTimeoutMs?: number;
  /** Largest batch dimension a call may carry. */
  maxBatch: number;
  /** Largest request message; gRPC's default is 4 MiB. */
  maxMessageBytes?: number;
  /** How often Health.Watch looks at readiness. */
  healthPollMs?: number;
  log?: { error(obj: object, msg: string): void };
  /**
   * Runs around every unary call (after auth): where the service starts the call's span (in the
   * trace the metadata names) and counts it by protocol. `rpc` is the method path, e.g.
   * /inference.GRPCInferenceService/ModelInfer.
   */
  aroundCall?: <T>(rpc: string, metadata: grpc.Metadata, run: () => Promise<T>) => Promise<T>;
};

export type OipGrpcServer = {
  /** The port the server listens on. */
  port: number;
  /** Stops taking calls, waits up to graceMs for those in flight, then cuts the rest. Idempotent. */
  close(graceMs: number): Promise<void>;
};

type ServiceDef = grpc.ServiceDefinition;
type Loaded = { inference: ServiceDef; health: ServiceDef };

function loadServices(): Loaded {
  const definition = protoLoader.loadSync([OIP_PROTO_PATH, HEALTH_PROTO_PATH], PROTO_LOADER_OPTIONS);
  const descriptor = grpc.loadPackageDefinition(definition) as unknown as {
    inference: { GRPCInferenceService: { service: ServiceDef } };
    grpc: { health: { v1: { Health: { service: ServiceDef } } } };
  };
  const inference = descriptor.inference.GRPCInferenceService.service;
  return {
    // ModelInfer reads and writes its messages with protobufjs directly (infer-codec.ts).
    inference: {
      ...inference,
      ModelInfer: { ...inference.ModelInfer!, requestDeserialize: decodeInferRequest, responseSerialize: encodeInferResponse },
    },
    health: descriptor.grpc.health.v1.Health.service,
  };
}

function digest(key: string): Buffer {
  return createHash('sha256').update(key).digest();
}

function checkKey(known: Buffer[], metadata: grpc.Metadata): void {
  if (known.length === 0) return;
  const value = metadata.get('authorization')[0];
  const match = typeof value === 'string' ? /^Bearer\s+(\S+)$/i.exec(value) : null;
  if (!match) throw new UnauthenticatedError();
  const given = digest(match[1]!);
  // Constant-time, so the check does not leak how much of a key matched.
  if (!known.some((k) => timingSafeEqual(k, given))) throw new UnauthenticatedError();
}

function toStatus(error: unknown): Partial<grpc.StatusObject> {
  const oip = toOipError(error);
  const metadata = new grpc.Metadata();
  if (oip.retryAfterSeconds !== undefined) metadata.set('retry-after', String(oip.retryAfterSeconds));
  return { code: oip.grpcCode, details: oip.message, metadata };
}

function callDeadlineMs(call: grpc.ServerUnaryCall<unknown, unknown>, timeoutMs: number, maxTimeoutMs: number | undefined): number {
  const now = Date.now();
  const deadline = call.getDeadline();
  const given = deadline instanceof Date ? deadline.getTime() : deadline;
  const ms = Number.isFinite(given) ? given : now + timeoutMs;
  return maxTimeoutMs === undefined ? ms : Math.min(ms, now + maxTimeoutMs);
}

/** The call's x-routing-key metadata, else its request id; neither leaves the routing to the backend. */
function routingKeyOf(call: grpc.ServerUnaryCall<unknown, unknown>, id: string): { routingKey?: string } {
  const [header] = call.metadata.get('x-routing-key');
  const key = typeof header === 'string' && header !== '' ? header : id;
  return key ? { routingKey: key } : {};
}

/**
 * Runs `work` with a signal aborted when the client cancels the call. The listener is removed
 * when the work ends: grpc-js also reports 'cancelled' for a call whose stream closes after
 * its answer, and aborting then would be wrong and costly.
 */
async function untilCancelled<T>(call: grpc.ServerUnaryCall<unknown, unknown>, work: (signal: AbortSignal) => Promise<T>): Promise<T> {
  const controller = new AbortController();
  const abort = () => controller.abort();
  call.once('cancelled', abort);
  try {
    return await work(controller.signal);
  } finally {
    call.removeListener('cancelled', abort);
  }
}

function hasContents(contents: GrpcTensorContents | null): boolean {
  return CONTENTS_FIELDS.some((f) => (contents?.[f]?.length ?? 0) > 0);
}

function requestInputs(request: InferRequest): { inputs: TensorMap; raw: boolean } {
  const raw = request.raw_input_contents.length > 0;
  if (raw && request.raw_input_contents.length !== request.inputs.length) {
    throw new InvalidArgumentError(`raw_input_contents has ${request.raw_input_contents.length} entries for ${request.inputs.length} inputs`);
  }
  const inputs: TensorMap = new Map();
  request.inputs.forEach((tensor, i) => {
    addInput(inputs, tensor.name, (name) => {
      if (!raw) return tensorFromContents(name, tensor.datatype, tensor.shape, tensor.contents);
      if (hasContents(tensor.contents)) {
        throw new InvalidArgumentError(`input "${name}" has contents although the request uses raw_input_contents`);
      }
      return tensorFromRaw(name, tensor.datatype, tensor.shape, request.raw_input_contents[i]!);
    });
  });
  return { inputs, raw };
}

function timingTrailer(result: InferResult): grpc.Metadata {
  const trailer = new grpc.Metadata();
  const t = result.timings;
  trailer.set('queue_ms', String(t.queueMs));
  trailer.set('batch_wait_ms', String(t.batchWaitMs));
  trailer.set('inference_ms', String(t.inferenceMs));
  trailer.set('batch_records', String(t.batchRecords));
  return trailer;
}

export async function startOipGrpcServer(options: OipGrpcOptions): Promise<OipGrpcServer> {
  const { backend, timeoutMs, maxTimeoutMs, maxBatch } = options;
  const known = options.apiKeys.map(digest);
  const services = loadServices();
  const server = new grpc.Server({
    'grpc.max_receive_message_length': options.maxMessageBytes ?? 4 * 1024 * 1024,
    // Channelz keeps per-call statistics nobody here reads (no channelz service is served).
    'grpc.enable_channelz': 0,
  });

  /** One unary handler: auth unless open, errors to statuses, an optional trailer. */
  function unary<Req, Res>(
    open: boolean,
    handle: (call: grpc.ServerUnaryCall<Req, Res>) => Promise<Res | { response: Res; trailer: grpc.Metadata }>,
  ): grpc.handleUnaryCall<Req, Res> {
    return (call, callback) => {
      Promise.resolve()
        .then(() => {
          if (!open) checkKey(known, call.metadata);
          const run = () => handle(call);
          return options.aroundCall ? options.aroundCall(call.getPath(), call.metadata, run) : run();
        })
        .then(
          (out) => {
            if (out && typeof out === 'object' && 'trailer' in out) callback(null, out.response, out.trailer);
            else callback(null, out as Res);
          },
          (error: unknown) => {
            if (isUnexpected(error)) {
              options.log?.error({ err: error, rpc: call.getPath() }, 'unhandled error');
            }
            callback(toStatus(error));
          },
        );
    };
  }

  type ModelRequest = { name: string; version: string };
  const modelArgs = (request: ModelRequest): [string, string | undefined] => {
    if (!request.name) throw new InvalidArgumentError('"name" is required');
    return [request.name, request.version || undefined];
  };

  server.addService(services.inference, {
    ServerLive: unary(true, async () => ({ live: true })),
    ServerReady: unary(true, async () => ({ ready: await backend.isReady() })),
    ModelReady: unary<ModelRequest, object>(false, async (call) => ({
      ready: await backend.modelReady(...modelArgs(call.request)),
    })),
    ServerMetadata: unary(false, async () => backend.serverMetadata()),
    ModelMetadata: unary<ModelRequest, object>(false, async (call) => {
      const meta = await backend.modelMetadata(...modelArgs(call.request));
      const tensor = ({ name, datatype, shape }: { name: string; datatype: string; shape: number[] }) => ({
        name,
        datatype,
        shape: shape.map(String),
      });
      return { ...meta, inputs: meta.inputs.map(tensor), outputs: meta.outputs.map(tensor) };
    }),
    ModelInfer: unary<InferRequest, InferResponse>(false, async (call) => {
      const request = call.request;
      const deadlineMs = callDeadlineMs(call, timeoutMs, maxTimeoutMs);
      if (!request.model_name) throw new InvalidArgumentError('"model_name" is required');
      const version = request.model_version || undefined;
      const meta = await backend.modelMetadata(request.model_name, version);
      const { inputs, raw } = requestInputs(request);
      checkInputs(inputs, meta, { maxBatch });
      const requested = checkRequestedOutputs(
        request.outputs.map((o) => o.name),
        meta,
      );
      const result = await untilCancelled(call, (signal) =>
        backend.infer(request.model_name, version, inputs, {
          deadlineMs,
          checked: meta,
          ...(requested && { outputs: requested }),
          signal,
          ...routingKeyOf(call, request.id),
        }),
      );
      const outputs = selectOutputs(result.outputs, requested, meta);
      const t = result.timings;
      const response: InferResponse = {
        model_name: result.modelName,
        model_version: result.modelVersion,
        id: request.id,
        parameters: {
          queue_ms: { double_param: t.queueMs },
          batch_wait_ms: { double_param: t.batchWaitMs },
          inference_ms: { double_param: t.inferenceMs },
          batch_records: { int64_param: t.batchRecords },
        },
        // A request in raw form is answered in raw form, as Triton does.
        outputs: outputs.map(([name, tensor]) => ({
          name,
          datatype: tensor.datatype,
          shape: tensor.shape,
          ...(!raw && { contents: contentsOf(tensor) }),
        })),
        raw_output_contents: raw ? outputs.map(([, tensor]) => rawOf(tensor)) : [],
      };
      return { response, trailer: timingTrailer(result) };
    }),
  });

  const watchers = new Set<grpc.ServerWritableStream<unknown, unknown>>();
  const healthOf = async (service: string): Promise<string | undefined> => {
    if (service !== '' && service !== 'inference.GRPCInferenceService') return undefined;
    return (await backend.isReady().catch(() => false)) ? 'SERVING' : 'NOT_SERVING';
  };

  server.addService(services.health, {
    Check: unary<{ service: string }, object>(true, async (call) => {
      const status = await healthOf(call.request.service);
      if (!status) throw new OipError('not_found', `Unknown service "${call.request.service}"`);
      return { status };
    }),
    Watch: (call: grpc.ServerWritableStream<{ service: string }, unknown>) => {
      watchers.add(call);
      let last: string | undefined;
      const look = async () => {
        const status = (await healthOf(call.request.service)) ?? 'SERVICE_UNKNOWN';
        if (status !== last && !call.cancelled && watchers.has(call)) call.write({ status });
        last = status;
      };
      const timer = setInterval(() => void look(), options.healthPollMs ?? 1000);
      const stop = () => {
        clearInterval(timer);
        watchers.delete(call);
      };
      call.once('cancelled', stop);
      call.once('finish', stop);
      void look();
    },
  });

  const port = await new Promise<number>((resolve, reject) => {
    server.bindAsync(`${options.host}:${options.port}`, grpc.ServerCredentials.createInsecure(), (error, bound) =>
      error ? reject(error) : resolve(bound),
    );
  });

  let closing: Promise<void> | undefined;
  return {
    port,
    close(graceMs: number) {
      closing ??= new Promise<void>((resolve) => {
        // A health watch never ends by itself; end them so the drain waits only for real calls.
        for (const watcher of watchers) watcher.end();
        watchers.clear();
        const force = setTimeout(() => {
          server.forceShutdown();
          resolve();
        }, graceMs);
        server.tryShutdown(() => {
          clearTimeout(force);
          resolve();
        });
      });
      return closing;
    },
  };
}
