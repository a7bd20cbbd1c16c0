// The protocol's gRPC service as a client calls it: @grpc/grpc-js with the project's own
// proto loaded by @grpc/proto-loader, against a real server on a real port. The backend is
// the in-process fixture.
import { test, after } from 'node:test';
import assert from 'node:assert/strict';
import * as grpc from '@grpc/grpc-js';
import * as protoLoader from '@grpc/proto-loader';
import { HEALTH_PROTO_PATH, OIP_PROTO_PATH, PROTO_LOADER_OPTIONS } from '../../src/api/oip/protos.ts';
import type { InferOptions } from '../../src/api/oip/backend.ts';
import { startOipGrpcServer, type OipGrpcServer } from '../../src/api/oip/grpc-server.ts';
import { DATATYPES, jsonData, tensorFromJson, type Datatype } from '../../src/api/oip/tensors.ts';
import { waitFor } from '../helpers/wait.ts';
import { FixtureBackend, MIRROR_INPUTS, mirrorOf, scaleOf } from './fixture-backend.ts';
import { SAMPLES, littleEndian } from './samples.ts';

const TIMEOUT_MS = 10_000;

const definition = protoLoader.loadSync([OIP_PROTO_PATH, HEALTH_PROTO_PATH], PROTO_LOADER_OPTIONS);
const loaded = grpc.loadPackageDefinition(definition) as unknown as {
  inference: { GRPCInferenceService: grpc.ServiceClientConstructor };
  grpc: { health: { v1: { Health: grpc.ServiceClientConstructor } } };
};

async function start(options: { apiKeys?: string[] } = {}) {
  const backend = new FixtureBackend();
  const around: { rpc: string; ok: boolean }[] = [];
  const server = await startOipGrpcServer({
    backend,
    host: '127.0.0.1',
    port: 0,
    apiKeys: options.apiKeys ?? [],
    timeoutMs: TIMEOUT_MS,
    maxBatch: 8,
    healthPollMs: 20,
    aroundCall: async (rpc, _metadata, run) => {
      try {
        const out = await run();
        around.push({ rpc, ok: true });
        return out;
      } catch (error) {
        around.push({ rpc, ok: false });
        throw error;
      }
    },
  });
  const address = `127.0.0.1:${server.port}`;
  const client = new loaded.inference.GRPCInferenceService(address, grpc.credentials.createInsecure());
  const health = new loaded.grpc.health.v1.Health(address, grpc.credentials.createInsecure());
  after(async () => {
    client.close();
    health.close();
    await server.close(1000);
  });
  return { backend, server, client, health, address, around };
}

type Answer = { response: Record<string, any>; trailer: grpc.Metadata };
type CallOptions = { metadata?: grpc.Metadata; deadline?: number; onCall?: (call: grpc.ClientUnaryCall) => void };

/** One unary call; resolves with the response and the trailing metadata. */
function rpc(client: grpc.Client, method: string, request: object, options: CallOptions = {}): Promise<Answer> {
  return new Promise((resolve, reject) => {
    let outcome: { error: grpc.ServiceError | null; response: Record<string, any> } | undefined;
    const stub = (client as unknown as Record<string, Function>)[method]!.bind(client);
    const call: grpc.ClientUnaryCall = stub(
      request,
      options.metadata ?? new grpc.Metadata(),
      options.deadline ? { deadline: options.deadline } : {},
      (error: grpc.ServiceError | null, response: Record<string, any>) => {
        outcome = { error, response };
      },
    );
    call.on('status', (status: grpc.StatusObject) => {
      // grpc-js calls back before it emits the status, so the outcome is known here.
      if (outcome?.error) reject(outcome.error);
      else resolve({ response: outcome!.response, trailer: status.metadata });
    });
    options.onCall?.(call);
  });
}

async function fails(promise: Promise<unknown>, code: grpc.status, message?: RegExp): Promise<grpc.ServiceError> {
  const error = await promise.then(
    () => assert.fail(`expected ${grpc.status[code]}`),
    (e: grpc.ServiceError) => e,
  );
  assert.equal(error.code, code, `${grpc.status[error.code]}: ${error.details}`);
  if (message) assert.match(error.details, message);
  return error;
}

const FIELDS: Record<Datatype, string> = {
  BOOL: 'bool_contents',
  UINT8: 'uint_contents',
  UINT16: 'uint_contents',
  UINT32: 'uint_contents',
  UINT64: 'uint64_contents',
  INT8: 'int_contents',
  INT16: 'int_contents',
  INT32: 'int_contents',
  INT64: 'int64_contents',
  FP32: 'fp32_contents',
  FP64: 'fp64_contents',
  BYTES: 'bytes_contents',
};

/** Values as a client puts them in InferTensorContents: 64-bit integers as strings, BYTES as bytes. */
function typedValues(datatype: Datatype, values: (number | boolean | string)[]): unknown[] {
  if (datatype === 'BYTES') return values.map((s) => Buffer.from(s as string, 'utf8'));
  if (datatype === 'INT64' || datatype === 'UINT64') return values.map(String);
  return values;
}

function mirrored(datatype: Datatype): (number | boolean | string)[] {
  return jsonData(mirrorOf(tensorFromJson('t', datatype, [4], SAMPLES[datatype])));
}

const { backend, client, health, around } = await start();

test('ServerLive, ServerReady, ServerMetadata, ModelReady', async () => {
  assert.deepEqual((await rpc(client, 'ServerLive', {})).response, { live: true });
  assert.deepEqual((await rpc(client, 'ServerReady', {})).response, { ready: true });
  assert.deepEqual((await rpc(client, 'ServerMetadata', {})).response, {
    name: 'fixture',
    version: '0.0.0',
    extensions: [],
  });
  assert.deepEqual((await rpc(client, 'ModelReady', { name: 'scale' })).response, { ready: true });
  assert.deepEqual((await rpc(client, 'ModelReady', { name: 'scale', version: '1' })).response, { ready: true });
  backend.ready = false;
  try {
    assert.deepEqual((await rpc(client, 'ServerReady', {})).response, { ready: false });
    assert.deepEqual((await rpc(client, 'ModelReady', { name: 'scale' })).response, { ready: false });
  } finally {
    backend.ready = true;
  }
  await fails(rpc(client, 'ModelReady', { name: 'nope' }), grpc.status.NOT_FOUND, /Unknown model "nope"/);
  await fails(rpc(client, 'ModelReady', { name: '' }), grpc.status.INVALID_ARGUMENT, /"name" is required/);
});

test('ModelMetadata names inputs and outputs with -1 for the batch dimension', async () => {
  const { response } = await rpc(client, 'ModelMetadata', { name: 'scale', version: '2' });
  assert.deepEqual(response, {
    name: 'scale',
    versions: ['1', '2'],
    platform: 'fixture_scale',
    inputs: [
      { name: 'x', datatype: 'FP32', shape: ['-1', '3'] },
      { name: 'weight', datatype: 'FP32', shape: ['-1', '1'] },
    ],
    outputs: [
      { name: 'y', datatype: 'FP32', shape: ['-1'] },
      { name: 'label', datatype: 'BYTES', shape: ['-1'] },
      { name: 'version', datatype: 'INT64', shape: ['-1'] },
    ],
  });
  await fails(rpc(client, 'ModelMetadata', { name: 'scale', version: '5' }), grpc.status.NOT_FOUND, /no version "5"/);
});

test('ModelInfer with typed contents: every datatype in and out, id, parameters and trailing timings', async () => {
  const request = {
    model_name: 'mirror',
    id: 'g-1',
    inputs: DATATYPES.map((datatype) => ({
      name: MIRROR_INPUTS[datatype],
      datatype,
      shape: [2, 2],
      contents: { [FIELDS[datatype]]: typedValues(datatype, SAMPLES[datatype]) },
    })),
  };
  const { response, trailer } = await rpc(client, 'ModelInfer', request);
  assert.equal(response.model_name, 'mirror');
  assert.equal(response.model_version, '1');
  assert.equal(response.id, 'g-1');
  assert.deepEqual(response.raw_output_contents, []);
  for (const datatype of DATATYPES) {
    const output = response.outputs.find((o: { name: string }) => o.name === `${MIRROR_INPUTS[datatype]}_out`);
    assert.equal(output.datatype, datatype);
    assert.deepEqual(output.shape, ['2', '2']);
    const got = output.contents[FIELDS[datatype]];
    assert.deepEqual(got, typedValues(datatype, mirrored(datatype)), datatype);
    for (const field of new Set(Object.values(FIELDS))) {
      if (field !== FIELDS[datatype]) assert.deepEqual(output.contents[field], [], `${datatype} fills only ${FIELDS[datatype]}`);
    }
  }
  const p = response.parameters;
  assert.equal(p.batch_records.int64_param, '2');
  for (const key of ['queue_ms', 'batch_wait_ms', 'inference_ms']) assert.equal(p[key].parameter_choice, 'double_param');
  for (const key of ['queue_ms', 'batch_wait_ms', 'inference_ms', 'batch_records']) {
    assert.equal(trailer.get(key).length, 1, `trailer ${key}`);
  }
  assert.equal(trailer.get('batch_records')[0], '2');
  assert.equal(Number(trailer.get('inference_ms')[0]), p.inference_ms.double_param);
});

test('ModelInfer: 64-bit contents past 2^53 cross the wire exact, both ways', async () => {
  const int64 = ['-9223372036854775808', '9007199254740993', '-9007199254740993', '9223372036854775806'];
  const uint64 = ['18446744073709551614', '9007199254740993', '0', '9223372036854775808'];
  const values = (datatype: Datatype) => (datatype === 'INT64' ? int64 : datatype === 'UINT64' ? uint64 : typedValues(datatype, SAMPLES[datatype]));
  const { response } = await rpc(client, 'ModelInfer', {
    model_name: 'mirror',
    inputs: DATATYPES.map((datatype) => ({
      name: MIRROR_INPUTS[datatype],
      datatype,
      shape: [2, 2],
      contents: { [FIELDS[datatype]]: values(datatype) },
    })),
  });
  const contents = (datatype: Datatype) =>
    response.outputs.find((o: { name: string }) => o.name === `${MIRROR_INPUTS[datatype]}_out`).contents[FIELDS[datatype]];
  // The mirror adds one to every integer.
  assert.deepEqual(
    contents('INT64'),
    int64.map((v) => String(BigInt(v) + 1n)),
  );
  assert.deepEqual(
    contents('UINT64'),
    uint64.map((v) => String(BigInt(v) + 1n)),
  );
});

test('ModelInfer with raw_input_contents is answered in raw_output_contents, little-endian', async () => {
  const request = {
    model_name: 'mirror',
    model_version: '1',
    inputs: DATATYPES.map((datatype) => ({ name: MIRROR_INPUTS[datatype], datatype, shape: [2, 2] })),
    raw_input_contents: DATATYPES.map((datatype) => littleEndian(datatype, SAMPLES[datatype])),
  };
  const { response } = await rpc(client, 'ModelInfer', request);
  assert.equal(response.raw_output_contents.length, DATATYPES.length);
  response.outputs.forEach((output: { name: string; datatype: Datatype; contents: unknown }, i: number) => {
    assert.equal(output.contents, null, 'raw outputs carry no typed contents');
    assert.deepEqual(response.raw_output_contents[i], littleEndian(output.datatype, mirrored(output.datatype)), output.name);
  });
});

test('ModelInfer: a version, an outputs list that selects', async () => {
  const x = [0.5, 0.25, 0.25, 1, 2, 3];
  const weight = [1, 2];
  const { response } = await rpc(client, 'ModelInfer', {
    model_name: 'scale',
    model_version: '1',
    inputs: [
      { name: 'x', datatype: 'FP32', shape: [2, 3], contents: { fp32_contents: x } },
      { name: 'weight', datatype: 'FP64', shape: [2, 1], contents: { fp64_contents: weight } },
    ],
    outputs: [{ name: 'label' }, { name: 'y' }],
  });
  assert.equal(response.model_version, '1');
  assert.deepEqual(
    response.outputs.map((o: { name: string }) => o.name),
    ['label', 'y'],
  );
  const expected = scaleOf(x, weight, 1);
  assert.deepEqual(response.outputs[0].contents.bytes_contents.map(String), expected.label);
  assert.deepEqual(response.outputs[1].contents.fp32_contents, Array.from(expected.y));
  // Once answered, a call is not "cancelled" for the backend, even after its stream has closed.
  const signal = backend.lastOptions!.signal!;
  await rpc(client, 'ServerLive', {});
  assert.equal(signal.aborted, false);
});

test('bad tensors get INVALID_ARGUMENT naming the input, and nothing reaches the backend', async () => {
  const x = { name: 'x', datatype: 'FP32', shape: [1, 3], contents: { fp32_contents: [1, 2, 3] } };
  const weight = { name: 'weight', datatype: 'FP32', shape: [1], contents: { fp32_contents: [1] } };
  const cases: [string, object, RegExp][] = [
    ['shape and data disagree', { inputs: [{ ...x, shape: [2, 3] }, weight] }, /input "x": shape \[2,3\] holds 6 elements but the data has 3/],
    ['unknown input', { inputs: [x, weight, { ...weight, name: 'w2' }] }, /unknown input "w2"/],
    ['missing input', { inputs: [x] }, /missing input "weight"/],
    ['wrong datatype', { inputs: [x, { ...weight, datatype: 'INT32', contents: { int_contents: [1] } }] }, /input "weight" has datatype INT32/],
    ['wrong contents field', { inputs: [x, { ...weight, contents: { fp64_contents: [1] } }] }, /input "weight": contents use fp64_contents/],
    [
      'NaN where the model takes finite numbers',
      { inputs: [{ ...x, contents: { fp32_contents: [1, Number.NaN, 3] } }, weight] },
      /input "x": element 1 is not a finite number/,
    ],
    [
      'batch over the limit',
      {
        inputs: [
          { ...x, shape: [9, 3], contents: { fp32_contents: Array(27).fill(1) } },
          { ...weight, shape: [9], contents: { fp32_contents: Array(9).fill(1) } },
        ],
      },
      /holds a batch of 9; the limit is 8/,
    ],
    [
      'raw of the wrong length',
      {
        inputs: [
          { ...x, contents: null },
          { ...weight, contents: null },
        ],
        raw_input_contents: [Buffer.alloc(12), Buffer.alloc(3)],
      },
      /input "weight": shape \[1\] of FP32 takes 4 raw bytes but 3 came/,
    ],
    [
      'raw for some inputs only',
      {
        inputs: [
          { ...x, contents: null },
          { ...weight, contents: null },
        ],
        raw_input_contents: [Buffer.alloc(12)],
      },
      /raw_input_contents has 1 entries for 2 inputs/,
    ],
    [
      'raw and typed together',
      { inputs: [{ ...x, contents: null }, weight], raw_input_contents: [Buffer.alloc(12), Buffer.alloc(4)] },
      /input "weight" has contents although the request uses raw_input_contents/,
    ],
    [
      'FP16',
      {
        inputs: [
          { ...x, datatype: 'FP16', contents: null },
          { ...weight, contents: null },
        ],
        raw_input_contents: [Buffer.alloc(6), Buffer.alloc(4)],
      },
      /input "x": datatype FP16 is not supported/,
    ],
    ['unknown output', { inputs: [x, weight], outputs: [{ name: 'nope' }] }, /unknown output "nope"/],
  ];
  const calls = backend.calls;
  for (const [what, request, message] of cases) {
    const error = await fails(rpc(client, 'ModelInfer', { model_name: 'scale', ...request }), grpc.status.INVALID_ARGUMENT);
    assert.match(error.details, message, what);
  }
  const notUtf8 = { name: 's', datatype: 'BYTES', shape: [1, 1], contents: { bytes_contents: [Buffer.from([0xff])] } };
  await fails(
    rpc(client, 'ModelInfer', { model_name: 'mirror', inputs: [notUtf8] }),
    grpc.status.INVALID_ARGUMENT,
    /input "s": element 0 is not valid UTF-8/,
  );
  await fails(rpc(client, 'ModelInfer', { inputs: [x, weight] }), grpc.status.INVALID_ARGUMENT, /"model_name" is required/);
  await fails(rpc(client, 'ModelInfer', { model_name: 'nope', inputs: [x, weight] }), grpc.status.NOT_FOUND, /Unknown model/);
  assert.equal(backend.calls, calls, 'no bad call reached the backend');
});

test('a malformed message gets an error status and the server keeps serving', async () => {
  const raw = new grpc.Client(`127.0.0.1:${(await start()).server.port}`, grpc.credentials.createInsecure());
  after(() => raw.close());
  const error = await new Promise<grpc.ServiceError>((resolve) => {
    raw.makeUnaryRequest(
      '/inference.GRPCInferenceService/ModelInfer',
      () => Buffer.from([0x0a, 0xff, 0xff, 0xff, 0xff, 0x0f]),
      (b: Buffer) => b,
      {},
      (err) => resolve(err!),
    );
  });
  assert.notEqual(error.code, grpc.status.OK);
  assert.deepEqual((await rpc(client, 'ServerLive', {})).response, { live: true });
});

const scaleCall = {
  model_name: 'scale',
  inputs: [
    { name: 'x', datatype: 'FP32', shape: [1, 3], contents: { fp32_contents: [1, 2, 3] } },
    { name: 'weight', datatype: 'FP32', shape: [1], contents: { fp32_contents: [1] } },
  ],
};

test('backend faults map to RESOURCE_EXHAUSTED and UNAVAILABLE', async () => {
  backend.fault = 'overloaded';
  try {
    const error = await fails(rpc(client, 'ModelInfer', scaleCall), grpc.status.RESOURCE_EXHAUSTED, /queue bound/);
    assert.deepEqual(error.metadata.get('retry-after'), ['1']);
    backend.fault = 'unavailable';
    await fails(rpc(client, 'ModelInfer', scaleCall), grpc.status.UNAVAILABLE, /No worker holds the model/);
  } finally {
    backend.fault = undefined;
  }
});

test("the call's deadline becomes the job's deadline; without one the default timeout applies", async () => {
  const before = Date.now();
  await rpc(client, 'ModelInfer', scaleCall);
  const fallback = backend.lastOptions!.deadlineMs;
  assert.ok(fallback >= before + TIMEOUT_MS && fallback <= Date.now() + TIMEOUT_MS);

  backend.fault = 'hold';
  try {
    // This call's own options, not lastOptions: client and server share this process's event loop,
    // and a loop held up past the deadline runs the client's deadline timer before the server has
    // read the call, so lastOptions could still be the call above.
    let options: InferOptions | undefined;
    void backend.nextHeld().then((o) => (options = o));
    const deadline = Date.now() + 400;
    await fails(rpc(client, 'ModelInfer', scaleCall, { deadline }), grpc.status.DEADLINE_EXCEEDED);
    const held = await waitFor(() => options, { what: 'the server to take the call' });
    // The deadline travels as a relative timeout; it arrives within the network's delay, far from the 10 s default.
    assert.ok(Math.abs(held.deadlineMs - deadline) < 1000, `job deadline ${held.deadlineMs - deadline} ms off`);
  } finally {
    backend.fault = undefined;
  }
});

test('a cancelled call aborts the signal the backend holds', async () => {
  backend.fault = 'hold';
  try {
    let call: grpc.ClientUnaryCall | undefined;
    const held = backend.nextHeld();
    const pending = rpc(client, 'ModelInfer', scaleCall, { onCall: (c) => (call = c) });
    const options = await held;
    call!.cancel();
    await fails(pending, grpc.status.CANCELLED);
    await waitFor(() => options.signal?.aborted, { what: 'the backend to see the cancel' });
  } finally {
    backend.fault = undefined;
  }
});

test('grpc.health.v1.Health: Check and Watch follow readiness', async () => {
  assert.deepEqual((await rpc(health, 'Check', { service: '' })).response, { status: 'SERVING' });
  assert.deepEqual((await rpc(health, 'Check', { service: 'inference.GRPCInferenceService' })).response, {
    status: 'SERVING',
  });
  await fails(rpc(health, 'Check', { service: 'other' }), grpc.status.NOT_FOUND);

  const seen: string[] = [];
  const watch = (health as unknown as { Watch(r: object): grpc.ClientReadableStream<{ status: string }> }).Watch({
    service: '',
  });
  watch.on('data', (m: { status: string }) => seen.push(m.status));
  watch.on('error', () => {});
  await waitFor(() => seen.length === 1, { what: 'the first status' });
  backend.ready = false;
  try {
    assert.deepEqual((await rpc(health, 'Check', { service: '' })).response, { status: 'NOT_SERVING' });
    await waitFor(() => seen.length === 2, { what: 'the change' });
  } finally {
    backend.ready = true;
  }
  watch.cancel();
  assert.deepEqual(seen.slice(0, 2), ['SERVING', 'NOT_SERVING']);
});

test('with API keys, calls need authorization: Bearer; liveness and health stay open', async () => {
  const secured = await start({ apiKeys: ['k1', 'k2'] });
  await fails(rpc(secured.client, 'ModelInfer', scaleCall), grpc.status.UNAUTHENTICATED, /Bearer/);
  await fails(rpc(secured.client, 'ModelMetadata', { name: 'scale' }), grpc.status.UNAUTHENTICATED);
  const wrong = new grpc.Metadata();
  wrong.set('authorization', 'Bearer k3');
  await fails(rpc(secured.client, 'ModelInfer', scaleCall, { metadata: wrong }), grpc.status.UNAUTHENTICATED);
  assert.deepEqual((await rpc(secured.client, 'ServerLive', {})).response, { live: true });
  assert.deepEqual((await rpc(secured.client, 'ServerReady', {})).response, { ready: true });
  assert.deepEqual((await rpc(secured.health, 'Check', { service: '' })).response, { status: 'SERVING' });
  const good = new grpc.Metadata();
  good.set('authorization', 'Bearer k2');
  const { response } = await rpc(secured.client, 'ModelInfer', scaleCall, { metadata: good });
  assert.equal(response.model_name, 'scale');
  assert.equal(secured.backend.calls, 1);
});

test('close() drains: a call in flight is answered, new calls are refused, watches end', async () => {
  const { backend: held, client: c, health: h, address, server } = await start();
  held.fault = 'hold';
  const pending = rpc(c, 'ModelInfer', scaleCall);
  await waitFor(() => held.held === 1, { what: 'the call to reach the backend' });
  const watch = (h as unknown as { Watch(r: object): grpc.ClientReadableStream<unknown> }).Watch({ service: '' });
  const watchEnded = new Promise<void>((resolve) => {
    watch.on('end', resolve);
    watch.on('error', () => resolve());
  });
  let watching = false;
  watch.on('data', () => (watching = true));
  await waitFor(() => watching, { what: 'the watch to report' });
  let closed = false;
  const closing = (server as OipGrpcServer).close(10_000).then(() => (closed = true));
  await watchEnded;
  const late = new loaded.inference.GRPCInferenceService(address, grpc.credentials.createInsecure());
  after(() => late.close());
  await fails(rpc(late, 'ServerLive', {}, { deadline: Date.now() + 2000 }), grpc.status.UNAVAILABLE);
  assert.equal(closed, false, 'close waits for the call in flight');
  held.release();
  const { response } = await pending;
  assert.equal(response.model_name, 'scale');
  await closing;
});

test('close() forces the calls still running once its grace is over', async () => {
  const { backend: held, client: c, server } = await start();
  held.fault = 'hold';
  const pending = rpc(c, 'ModelInfer', scaleCall);
  await waitFor(() => held.held === 1, { what: 'the call to reach the backend' });
  await server.close(100);
  const error = await pending.then(
    () => assert.fail('the call should have been cut'),
    (e: grpc.ServiceError) => e,
  );
  assert.notEqual(error.code, grpc.status.OK);
  held.release();
});

test('aroundCall sees every unary call with its method path and outcome', async () => {
  const seen = around.length;
  await rpc(client, 'ServerMetadata', {});
  await fails(rpc(client, 'ModelMetadata', { name: 'nope' }), grpc.status.NOT_FOUND);
  assert.deepEqual(around.slice(seen), [
    { rpc: '/inference.GRPCInferenceService/ServerMetadata', ok: true },
    { rpc: '/inference.GRPCInferenceService/ModelMetadata', ok: false },
  ]);
});
