// Closed-loop gRPC load from this process: `concurrency` callers, each sending its next unary
// ModelInfer as soon as the previous one is answered, spread over a few channels (HTTP/2
// connections), as a client library with a small channel pool would. The figures are those of
// load.ts, so the rows sit beside autocannon's.
import * as grpc from '@grpc/grpc-js';
import * as protoLoader from '@grpc/proto-loader';
import { OIP_PROTO_PATH, PROTO_LOADER_OPTIONS } from '../src/api/oip/grpc-server.ts';
import { percentile, round, type LoadResult } from './load.ts';

const definition = protoLoader.loadSync(OIP_PROTO_PATH, PROTO_LOADER_OPTIONS);
const modelInfer = (definition['inference.GRPCInferenceService'] as grpc.ServiceDefinition).ModelInfer!;

// Requests are serialized once and responses left as bytes, as autocannon sends prebuilt bodies and
// reads no JSON: the load generator's own protobuf work would otherwise take the core the api needs.
const RawClient = grpc.makeGenericClientConstructor(
  {
    ModelInfer: {
      path: modelInfer.path,
      requestStream: false,
      responseStream: false,
      requestSerialize: (b: Buffer) => b,
      requestDeserialize: (b: Buffer) => b,
      responseSerialize: (b: Buffer) => b,
      responseDeserialize: (b: Buffer) => b,
    },
  },
  'GRPCInferenceService',
);

/** A response decoded, for a check before the load. */
export function decodeInferResponse(bytes: Buffer): Record<string, unknown> {
  return modelInfer.responseDeserialize(bytes) as Record<string, unknown>;
}

/** Concurrent calls per channel: HTTP/2 multiplexes them, a few connections spread the api's socket work. */
const CALLS_PER_CHANNEL = 16;
const CALL_TIMEOUT_MS = 10_000;

export type GrpcLoadOptions = {
  /** host:port of the gRPC server. */
  address: string;
  concurrency: number;
  durationS: number;
  /** ModelInfer requests cycled through per caller. */
  requests: object[];
};

export async function runGrpcLoad(options: GrpcLoadOptions): Promise<LoadResult & { lastResponse?: Buffer }> {
  const channels = Math.max(1, Math.ceil(options.concurrency / CALLS_PER_CHANNEL));
  // A local subchannel pool per client: without it grpc-js would share one connection among them all.
  const clients = Array.from(
    { length: channels },
    () => new RawClient(options.address, grpc.credentials.createInsecure(), { 'grpc.use_local_subchannel_pool': 1, 'grpc.enable_channelz': 0 }),
  );
  await Promise.all(
    clients.map((c) => new Promise<void>((resolve, reject) => c.waitForReady(Date.now() + 5000, (e) => (e ? reject(e) : resolve())))),
  );

  const latencies: number[] = [];
  const statusCodes: Record<string, number> = {};
  let errors = 0;
  const started = performance.now();
  const until = started + options.durationS * 1000;
  const requests = options.requests.map((r) => modelInfer.requestSerialize(r));
  let last: Buffer | undefined;
  const call = (client: grpc.Client, request: Buffer) =>
    new Promise<void>((resolve) => {
      const t0 = performance.now();
      (client as unknown as { ModelInfer: Function }).ModelInfer(
        request,
        { deadline: Date.now() + CALL_TIMEOUT_MS },
        (error: grpc.ServiceError | null, response?: Buffer) => {
          last = response ?? last;
          const code = error ? grpc.status[error.code] : 'OK';
          statusCodes[code!] = (statusCodes[code!] ?? 0) + 1;
          if (error) errors++;
          else latencies.push(performance.now() - t0);
          resolve();
        },
      );
    });
  await Promise.all(
    Array.from({ length: options.concurrency }, async (_, i) => {
      const client = clients[i % channels]!;
      for (let n = i; performance.now() < until; n++) await call(client, requests[n % requests.length]!);
    }),
  );
  const seconds = (performance.now() - started) / 1000;
  for (const c of clients) c.close();

  latencies.sort((a, b) => a - b);
  return {
    concurrency: options.concurrency,
    seconds: round(seconds, 2),
    rps: round(latencies.length / seconds, 1),
    ok: latencies.length,
    p50_ms: round(percentile(latencies, 0.5), 3),
    p90_ms: round(percentile(latencies, 0.9), 3),
    p99_ms: round(percentile(latencies, 0.99), 3),
    max_ms: round(latencies.at(-1) ?? 0, 3),
    errors,
    status_codes: statusCodes,
    ...(last && { lastResponse: last }),
  };
}
