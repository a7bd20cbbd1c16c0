// Inference calls by protocol: `scoring_inference_calls_total{protocol, status}` counts the
// service's own HTTP routes (/predict, /models/…/predict), the Open Inference Protocol over REST
// (/v2/…/infer) and over gRPC (ModelInfer) alike, and a gRPC call gets a server span as an HTTP
// call gets one from the HTTP instrumentation, so the dispatcher's span of it is its child.
import { context, propagation, SpanKind, SpanStatusCode, trace, type Counter, type Meter, type TextMapGetter, type Tracer } from '@opentelemetry/api';
import { status as GrpcStatus, type Metadata } from '@grpc/grpc-js';
import type { FastifyInstance } from 'fastify';
import { AppError } from '../shared/errors.ts';
import { toOipError } from './oip/errors.ts';

export type InferenceProtocol = 'http' | 'rest' | 'grpc';

export const INFERENCE_CALLS = 'scoring_inference_calls_total';

export function inferenceCallsCounter(meter: Meter): Counter {
  return meter.createCounter(INFERENCE_CALLS, {
    description: 'Inference calls, by protocol (http: /predict and /models; rest and grpc: the Open Inference Protocol) and status',
  });
}

const HTTP_INFERENCE_ROUTE = /^\/(predict(\/batch)?|models\/:name(\/versions\/:version)?\/predict(\/batch)?)$/;
const REST_INFERENCE_ROUTE = /^\/v2\/models\/:model(\/versions\/:version)?\/infer$/;

/** Counts the HTTP inference routes' calls by the status they answered. */
export function countHttpInferenceCalls(app: FastifyInstance, calls: Counter): void {
  app.addHook('onResponse', async (request, reply) => {
    const route = request.routeOptions.url;
    if (!route || request.method !== 'POST') return;
    const protocol: InferenceProtocol | undefined = REST_INFERENCE_ROUTE.test(route) ? 'rest' : HTTP_INFERENCE_ROUTE.test(route) ? 'http' : undefined;
    if (protocol) calls.add(1, { protocol, status: String(reply.statusCode) });
  });
}

/**
 * The code scoring_errors_total counts an error of the protocol routes by: the service's own code
 * when it raised one (model_unavailable, overloaded, …), else the protocol's kind of error.
 */
export function errorCodeOf(error: unknown): string {
  return error instanceof AppError ? error.code : toOipError(error).kind;
}

const GRPC_CODE_NAME = Object.fromEntries(Object.entries(GrpcStatus).map(([name, code]) => [code, name])) as Record<number, string>;

/** Reads W3C trace context (traceparent, tracestate) from a call's metadata, as the HTTP instrumentation reads it from headers. */
const metadataGetter: TextMapGetter<Metadata> = {
  keys: (metadata) => Object.keys(metadata.getMap()),
  get: (metadata, key) => {
    const values = metadata.get(key).filter((v): v is string => typeof v === 'string');
    return values.length === 0 ? undefined : values.length === 1 ? values[0] : values;
  },
};

/**
 * The gRPC server's aroundCall: a SERVER span named as OpenTelemetry's RPC conventions say
 * (`package.Service/Method`), in the trace the client's metadata names (a root span without
 * one), active while the call runs, and ModelInfer counted by its status. Without `tracing`
 * (no spans exported) there is no span to make: no trace context is read from the metadata and
 * no context is entered, only the count, which is all a call then costs here.
 */
export function grpcAroundCall(tracer: Tracer, calls: Counter, errors: Counter, tracing: boolean) {
  const counted = async <T>(method: string, run: () => Promise<T>, onError?: (error: unknown, code: number) => void): Promise<T> => {
    const count = (code: number) => {
      if (method === 'ModelInfer') calls.add(1, { protocol: 'grpc', status: GRPC_CODE_NAME[code] ?? String(code) });
    };
    try {
      const out = await run();
      count(GrpcStatus.OK);
      return out;
    } catch (error) {
      const oip = toOipError(error);
      const code = oip.grpcCode;
      onError?.(error, code);
      count(code);
      // A caller that left is not an error of the service, as an HTTP client gone is not counted.
      if (oip.kind !== 'cancelled') errors.add(1, { code: errorCodeOf(error), protocol: 'grpc', status: GRPC_CODE_NAME[code] ?? String(code) });
      throw error;
    }
  };
  if (!tracing) {
    return <T>(rpc: string, _metadata: Metadata, run: () => Promise<T>): Promise<T> => counted(rpc.slice(rpc.lastIndexOf('/') + 1), run);
  }
  return async <T>(rpc: string, metadata: Metadata, run: () => Promise<T>): Promise<T> => {
    const [service = '', method = ''] = rpc.replace(/^\//, '').split('/');
    const parent = propagation.extract(context.active(), metadata, metadataGetter);
    const span = tracer.startSpan(
      `${service}/${method}`,
      { kind: SpanKind.SERVER, attributes: { 'rpc.system': 'grpc', 'rpc.service': service, 'rpc.method': method } },
      parent,
    );
    try {
      const out = await counted(
        method,
        () => context.with(trace.setSpan(parent, span), run),
        (error, code) => {
          span.setAttribute('rpc.grpc.status_code', code);
          span.setStatus({ code: SpanStatusCode.ERROR, message: (error as Error).message });
        },
      );
      span.setAttribute('rpc.grpc.status_code', GrpcStatus.OK);
      return out;
    } finally {
      span.end();
    }
  };
}
