// Closed-loop gRPC load from this process: `concurrency` callers, each sending its next unary
// ModelInfer as soon as the previous one is answered, spread over a few HTTP/2 connections, as
// a client library with a small channel pool would.
//
// The calls are made with node:http2 and prebuilt gRPC frames, as autocannon sends prebuilt
// HTTP/1.1 requests: the load generator shares this machine's two cores with the api, and
// @grpc/grpc-js's client costs about twice the CPU per call (its interceptors, deadline timers
// and metadata objects), which the api would lose. Each answer still counts by its grpc-status
// trailer, and the bench decodes one answer before the load to check it (decodeInferResponse).
// The project's tests call the server with @grpc/grpc-js, as a client would.
import * as grpc from '@grpc/grpc-js';
import * as protoLoader from '@grpc/proto-loader';
import http2 from 'node:http2';
import { OIP_PROTO_PATH, PROTO_LOADER_OPTIONS } from '../src/api/oip/protos.ts';
import { loadResult, type LoadResult } from './load.ts';

const definition = protoLoader.loadSync(OIP_PROTO_PATH, PROTO_LOADER_OPTIONS);
const modelInfer = (definition['inference.GRPCInferenceService'] as grpc.ServiceDefinition).ModelInfer!;

/** A response decoded, for a check before the load. */
export function decodeInferResponse(bytes: Buffer): Record<string, unknown> {
  return modelInfer.responseDeserialize(bytes) as Record<string, unknown>;
}

/** Concurrent calls per connection: HTTP/2 multiplexes them, a few connections spread the api's socket work. */
const CALLS_PER_CONNECTION = 16;
const CALL_TIMEOUT = '10S';

export type GrpcLoadOptions = {
  /** host:port of the gRPC server. */
  address: string;
  concurrency: number;
  durationS: number;
  /** ModelInfer requests cycled through per caller. */
  requests: object[];
};

/** One gRPC message on the wire: a 0 (not compressed) flag, a 4-byte big-endian length, the message. */
function grpcFrame(message: Buffer): Buffer {
  const frame = Buffer.alloc(5 + message.length);
  frame.writeUInt32BE(message.length, 1);
  message.copy(frame, 5);
  return frame;
}

type Answer = { status: string; body: Buffer[] };

function unaryCall(session: http2.ClientHttp2Session, frame: Buffer, keepBody: boolean): Promise<Answer> {
  return new Promise((resolve) => {
    const stream = session.request({
      ':method': 'POST',
      ':path': modelInfer.path,
      'content-type': 'application/grpc',
      te: 'trailers',
      'grpc-timeout': CALL_TIMEOUT,
    });
    const answer: Answer = { status: 'no status', body: [] };
    // A call refused at once answers in its headers alone (trailers-only).
    stream.on('response', (headers) => {
      if (headers['grpc-status'] !== undefined) answer.status = String(headers['grpc-status']);
    });
    stream.on('trailers', (trailers) => (answer.status = String(trailers['grpc-status'])));
    stream.on('data', (chunk: Buffer) => keepBody && answer.body.push(chunk));
    stream.on('error', () => (answer.status = 'stream error'));
    stream.on('close', () => resolve(answer));
    stream.end(frame);
  });
}

const statusName = (code: string) => grpc.status[Number(code)] ?? code;

export async function runGrpcLoad(options: GrpcLoadOptions): Promise<LoadResult & { lastResponse?: Buffer }> {
  const sessions = Array.from({ length: Math.max(1, Math.ceil(options.concurrency / CALLS_PER_CONNECTION)) }, () =>
    http2.connect(`http://${options.address}`),
  );
  await Promise.all(
    sessions.map(
      (session) =>
        new Promise<void>((resolve, reject) => {
          session.once('connect', () => resolve());
          session.once('error', reject);
        }),
    ),
  );

  const frames = options.requests.map((r) => grpcFrame(modelInfer.requestSerialize(r)));
  const latencies: number[] = [];
  const statusCodes: Record<string, number> = {};
  let errors = 0;
  let last: Buffer | undefined;
  const started = performance.now();
  const until = started + options.durationS * 1000;
  await Promise.all(
    Array.from({ length: options.concurrency }, async (_, i) => {
      const session = sessions[i % sessions.length]!;
      for (let n = i; performance.now() < until; n++) {
        const t0 = performance.now();
        // Only the first caller keeps bodies: the check reads one answer, the load needs none.
        const answer = await unaryCall(session, frames[n % frames.length]!, i === 0);
        const name = statusName(answer.status);
        statusCodes[name] = (statusCodes[name] ?? 0) + 1;
        if (answer.status !== '0') errors++;
        else {
          latencies.push(performance.now() - t0);
          if (answer.body.length > 0) last = Buffer.concat(answer.body).subarray(5);
        }
      }
    }),
  );
  const seconds = (performance.now() - started) / 1000;
  await Promise.all(sessions.map((s) => new Promise<void>((resolve) => s.close(() => resolve()))));

  return { ...loadResult(options.concurrency, seconds, latencies, errors, statusCodes), ...(last && { lastResponse: last }) };
}
