// What a gRPC call costs the api before any queue work: a process that serves ModelInfer and
// answers at once, in two forms, driven by the same load generator as the oip-grpc row.
//   echo:     @grpc/grpc-js alone, with a prebuilt answer (no protobuf work, no checks).
//   protocol: the api's own gRPC server (startOipGrpcServer: decoding, tensor checks, the
//             answer's encoding; not the span and counter the api adds) over a backend that
//             answers fraud's tensors at once.
// Set beside /predict's api CPU per call in the same run, these say how much of the oip-grpc
// row's gap to /predict is the transport's own floor, which no work behind it can remove.
//
// `node bench/grpc-front.ts <echo|protocol>` serves on a free port and prints it as one JSON line.
import * as grpc from '@grpc/grpc-js';
import * as protoLoader from '@grpc/proto-loader';
import { spawn } from 'node:child_process';
import { once } from 'node:events';
import { createInterface } from 'node:readline';
import { fileURLToPath } from 'node:url';
import type { InferenceBackend } from '../src/api/oip/backend.ts';
import { startOipGrpcServer } from '../src/api/oip/grpc-server.ts';
import { OIP_PROTO_PATH, PROTO_LOADER_OPTIONS } from '../src/api/oip/protos.ts';
import type { TensorMetadata } from '../src/api/oip/backend.ts';

export type FrontKind = 'echo' | 'protocol';

/** The fraud model's protocol face, as the service derives it from the committed manifest's record fields. */
const FRAUD_INPUTS: TensorMetadata[] = [
  { name: 'transaction_amount', datatype: 'FP32', shape: [-1], accepts: ['FP64'], finite: true },
  { name: 'merchant_category', datatype: 'BYTES', shape: [-1] },
  { name: 'card_present', datatype: 'BOOL', shape: [-1] },
  { name: 'hour_of_day', datatype: 'INT32', shape: [-1], accepts: ['INT64'] },
  { name: 'days_since_last_transaction', datatype: 'FP32', shape: [-1], accepts: ['FP64'], finite: true },
];
const FRAUD_OUTPUTS: TensorMetadata[] = [
  { name: 'fraud_probability', datatype: 'FP32', shape: [-1] },
  { name: 'decision', datatype: 'BYTES', shape: [-1] },
];

const HOST = '127.0.0.1';

/** A backend with fraud's face that answers every call at once: the protocol layer's cost, with nothing behind it. */
const instantBackend: InferenceBackend = {
  serverMetadata: () => ({ name: 'grpc-front', version: '0', extensions: [] }),
  isReady: async () => true,
  modelReady: async () => true,
  modelMetadata: async (name) => ({ name, versions: ['1'], platform: 'onnx_onnxv1', inputs: FRAUD_INPUTS, outputs: FRAUD_OUTPUTS }),
  infer: async (name, _version, inputs) => {
    const n = inputs.values().next().value!.shape[0] ?? 1;
    return {
      modelName: name,
      modelVersion: '1',
      outputs: new Map([
        ['fraud_probability', { datatype: 'FP32', shape: [n], data: new Float32Array(n).fill(0.02) }],
        ['decision', { datatype: 'BYTES', shape: [n], data: new Array<string>(n).fill('approve') }],
      ]),
      timings: { queueMs: 0, batchWaitMs: 0, inferenceMs: 0, batchRecords: n },
    };
  },
};

async function serveEcho(): Promise<number> {
  const definition = protoLoader.loadSync(OIP_PROTO_PATH, PROTO_LOADER_OPTIONS);
  const modelInfer = (definition['inference.GRPCInferenceService'] as grpc.ServiceDefinition).ModelInfer!;
  const answer = modelInfer.responseSerialize({
    model_name: 'fraud',
    model_version: '1',
    outputs: [{ name: 'fraud_probability', datatype: 'FP32', shape: ['1'], contents: { fp32_contents: [0.02] } }],
  });
  const bytes = (b: Buffer) => b;
  const server = new grpc.Server({ 'grpc.enable_channelz': 0 });
  server.addService(
    { ModelInfer: { ...modelInfer, requestDeserialize: bytes, responseSerialize: bytes } },
    { ModelInfer: (_call: unknown, callback: grpc.sendUnaryData<Buffer>) => callback(null, answer) },
  );
  return new Promise((resolve, reject) =>
    server.bindAsync(`${HOST}:0`, grpc.ServerCredentials.createInsecure(), (error, port) => (error ? reject(error) : resolve(port))),
  );
}

async function serveProtocol(): Promise<number> {
  const server = await startOipGrpcServer({ backend: instantBackend, host: HOST, port: 0, apiKeys: [], timeoutMs: 10_000, maxBatch: 1000 });
  return server.port;
}

export type GrpcFront = { pid: number; address: string; stop: () => Promise<void> };

/** Starts a front in its own process, so its CPU is metered apart from the load generator's. */
export async function startGrpcFront(kind: FrontKind): Promise<GrpcFront> {
  const child = spawn(process.execPath, [fileURLToPath(import.meta.url), kind], { stdio: ['ignore', 'pipe', 'inherit'] });
  const [line] = (await once(createInterface({ input: child.stdout! }), 'line')) as [string];
  const { port } = JSON.parse(line) as { port: number };
  return {
    pid: child.pid!,
    address: `${HOST}:${port}`,
    stop: async () => {
      child.kill('SIGTERM');
      if (child.exitCode === null) await once(child, 'exit');
    },
  };
}

if (process.argv[1] === fileURLToPath(import.meta.url)) {
  const kind = process.argv[2] as FrontKind;
  const port = kind === 'echo' ? await serveEcho() : await serveProtocol();
  console.log(JSON.stringify({ port }));
  process.once('SIGTERM', () => process.exit(0));
}
