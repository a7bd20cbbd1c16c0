// The Open Inference Protocol end to end: real api and worker processes, real Redis, real
// onnxruntime sessions. REST is called with plain HTTP and every body checked against the
// protocol's schemas; gRPC with @grpc/grpc-js and the project's own proto, as a client would.
// Both go through the same dispatcher and queue as /predict, so their scores are /predict's.
import { after, before, describe, test } from 'node:test';
import assert from 'node:assert/strict';
import * as grpc from '@grpc/grpc-js';
import * as protoLoader from '@grpc/proto-loader';
import { Queue } from 'bullmq';
import { startTestRedis, type TestRedis } from '../helpers/redis-server.ts';
import { startApi, startWorker, type ServiceProcess } from '../helpers/processes.ts';
import { freePort } from '../helpers/ports.ts';
import { postJson, readMetric, request } from '../helpers/http.ts';
import { waitFor } from '../helpers/wait.ts';
import {
  conforms,
  inference_error_response,
  inference_response,
  metadata_model_response,
  metadata_server_response,
  ready_model_response,
} from '../oip/oip-schemas.ts';
import { HEALTH_PROTO_PATH, OIP_PROTO_PATH, PROTO_LOADER_OPTIONS } from '../../src/api/oip/protos.ts';
import { predictQueueName } from '../../src/shared/queues.ts';
import { generateFraudRecords } from '../../scripts/model/fraud-data.ts';
import { generateSpeciesRows } from '../../scripts/model/species-data.ts';
import type { FraudRecord } from '../../src/shared/schemas/record.ts';
import { COLUMNS_MIN_ROWS } from '../../src/api/oip/service-backend.ts';

const PREFIX = 'e2e-oip';
const KEY = 'oip-test-key';
const AUTH = { authorization: `Bearer ${KEY}` };
const MAX_BATCH = 1000;
const FRAUD_QUEUE = predictQueueName('fraud', 1);

const definition = protoLoader.loadSync([OIP_PROTO_PATH, HEALTH_PROTO_PATH], PROTO_LOADER_OPTIONS);
const loaded = grpc.loadPackageDefinition(definition) as unknown as {
  inference: { GRPCInferenceService: grpc.ServiceClientConstructor };
  grpc: { health: { v1: { Health: grpc.ServiceClientConstructor } } };
};

let redis: TestRedis;
let queue: Queue;
const started: ServiceProcess[] = [];
const clients: grpc.Client[] = [];

async function api(env: Record<string, string> = {}): Promise<ServiceProcess & { grpcPort: number }> {
  const grpcPort = await freePort();
  const p = await startApi({
    REDIS_URL: redis.url,
    QUEUE_PREFIX: PREFIX,
    API_KEYS: KEY,
    GRPC_PORT: String(grpcPort),
    MAX_BATCH_RECORDS: String(MAX_BATCH),
    ...env,
  });
  started.push(p);
  return { ...p, grpcPort };
}

function client(port: number): grpc.Client {
  const c = new loaded.inference.GRPCInferenceService(`127.0.0.1:${port}`, grpc.credentials.createInsecure());
  clients.push(c);
  return c;
}

function bearer(): grpc.Metadata {
  const m = new grpc.Metadata();
  m.set('authorization', AUTH.authorization);
  return m;
}

type Answer = { response: Record<string, any>; trailer: grpc.Metadata };

/** One unary call; resolves with the response and its trailing metadata, rejects with the ServiceError. */
function rpc(c: grpc.Client, method: string, req: object, options: { metadata?: grpc.Metadata; deadline?: number } = {}): Promise<Answer> {
  return new Promise((resolve, reject) => {
    let outcome: { error: grpc.ServiceError | null; response: Record<string, any> } | undefined;
    const stub = (c as unknown as Record<string, Function>)[method]!.bind(c);
    const call: grpc.ClientUnaryCall = stub(
      req,
      options.metadata ?? bearer(),
      options.deadline ? { deadline: options.deadline } : {},
      (error: grpc.ServiceError | null, response: Record<string, any>) => {
        outcome = { error, response };
      },
    );
    call.on('status', (status: grpc.StatusObject) => {
      if (outcome?.error) reject(outcome.error);
      else resolve({ response: outcome!.response, trailer: status.metadata });
    });
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

/** Jobs ever added to fraud's online queue (BullMQ's id counter): proves nothing was enqueued. */
async function jobsEverAdded(): Promise<number> {
  return Number((await redis.client.get(`${PREFIX}:${FRAUD_QUEUE}:id`)) ?? 0);
}

// ── Fraud's records as the protocol's tensors ───────────────────────────────

type RestInput = { name: string; shape: number[]; datatype: string; data: unknown[] };

function fraudRestInputs(records: readonly FraudRecord[]): RestInput[] {
  const n = records.length;
  return [
    { name: 'transaction_amount', shape: [n], datatype: 'FP64', data: records.map((r) => r.transaction_amount) },
    { name: 'merchant_category', shape: [n], datatype: 'BYTES', data: records.map((r) => r.merchant_category) },
    { name: 'card_present', shape: [n], datatype: 'BOOL', data: records.map((r) => r.card_present) },
    // [N,1] with nested data: the other form the protocol allows.
    { name: 'hour_of_day', shape: [n, 1], datatype: 'INT64', data: records.map((r) => [r.hour_of_day]) },
    { name: 'days_since_last_transaction', shape: [n], datatype: 'FP64', data: records.map((r) => r.days_since_last_transaction) },
  ];
}

function fraudGrpcTyped(records: readonly FraudRecord[]) {
  const n = String(records.length);
  return [
    { name: 'transaction_amount', datatype: 'FP64', shape: [n], contents: { fp64_contents: records.map((r) => r.transaction_amount) } },
    { name: 'merchant_category', datatype: 'BYTES', shape: [n], contents: { bytes_contents: records.map((r) => Buffer.from(r.merchant_category)) } },
    { name: 'card_present', datatype: 'BOOL', shape: [n], contents: { bool_contents: records.map((r) => r.card_present) } },
    { name: 'hour_of_day', datatype: 'INT32', shape: [n, '1'], contents: { int_contents: records.map((r) => r.hour_of_day) } },
    {
      name: 'days_since_last_transaction',
      datatype: 'FP64',
      shape: [n],
      contents: { fp64_contents: records.map((r) => r.days_since_last_transaction) },
    },
  ];
}

/** The raw form: FP32 and INT32 little-endian, BYTES length-prefixed, written with DataView. */
function fraudGrpcRaw(records: readonly FraudRecord[]) {
  const n = records.length;
  const f32 = (values: number[]) => {
    const v = new DataView(new ArrayBuffer(4 * n));
    values.forEach((x, i) => v.setFloat32(4 * i, x, true));
    return Buffer.from(v.buffer);
  };
  const i32 = (values: number[]) => {
    const v = new DataView(new ArrayBuffer(4 * n));
    values.forEach((x, i) => v.setInt32(4 * i, x, true));
    return Buffer.from(v.buffer);
  };
  const strings = Buffer.concat(
    records.flatMap((r) => {
      const bytes = Buffer.from(r.merchant_category);
      const length = Buffer.alloc(4);
      length.writeUInt32LE(bytes.length);
      return [length, bytes];
    }),
  );
  const tensor = (name: string, datatype: string) => ({ name, datatype, shape: [String(n)] });
  return {
    inputs: [
      tensor('transaction_amount', 'FP32'),
      tensor('merchant_category', 'BYTES'),
      tensor('card_present', 'BOOL'),
      tensor('hour_of_day', 'INT32'),
      tensor('days_since_last_transaction', 'FP32'),
    ],
    raw_input_contents: [
      f32(records.map((r) => r.transaction_amount)),
      strings,
      Buffer.from(records.map((r) => (r.card_present ? 1 : 0))),
      i32(records.map((r) => r.hour_of_day)),
      f32(records.map((r) => r.days_since_last_transaction)),
    ],
  };
}

function float32s(raw: Buffer): number[] {
  const v = new DataView(raw.buffer, raw.byteOffset, raw.byteLength);
  return Array.from({ length: raw.byteLength / 4 }, (_, i) => v.getFloat32(4 * i, true));
}

function restOutput(body: any, name: string): any {
  const output = body.outputs.find((o: { name: string }) => o.name === name);
  assert.ok(output, `no output ${name} in ${JSON.stringify(body).slice(0, 300)}`);
  return output;
}

before(async () => {
  redis = await startTestRedis();
  queue = new Queue(FRAUD_QUEUE, { connection: { url: redis.url }, prefix: PREFIX });
});

after(async () => {
  for (const c of clients) c.close();
  await Promise.all(started.map((p) => p.stop('SIGKILL')));
  await queue.close();
  await redis.close();
});

describe('the protocol over a running api and worker', () => {
  let a: ServiceProcess & { grpcPort: number };
  let w: ServiceProcess;
  let c: grpc.Client;
  before(async () => {
    w = await startWorker({ REDIS_URL: redis.url, QUEUE_PREFIX: PREFIX });
    started.push(w);
    a = await api();
    c = client(a.grpcPort);
    // The api learns what the worker holds from its heartbeat snapshot.
    await waitFor(async () => (await request(`${a.url}/v2/health/ready`)).status === 200, { what: 'the api ready over /v2' });
  });

  test('server and model metadata over both transports: fraud speaks its five fields, species its graph', async () => {
    conforms(metadata_server_response, (await request(`${a.url}/v2`, { headers: AUTH })).body);
    const live = await request(`${a.url}/v2/health/live`);
    assert.deepEqual(live.body, { live: true });
    assert.deepEqual((await rpc(c, 'ServerReady', {})).response, { ready: true });

    const expectedFraud = {
      name: 'fraud',
      versions: ['1', '2'], // 1: the GBDT (champion, whose signature this is); 2: the XGBoost booster
      platform: 'onnx_onnxv1',
      inputs: [
        { name: 'transaction_amount', datatype: 'FP32', shape: [-1] },
        { name: 'merchant_category', datatype: 'BYTES', shape: [-1] },
        { name: 'card_present', datatype: 'BOOL', shape: [-1] },
        { name: 'hour_of_day', datatype: 'INT32', shape: [-1] },
        { name: 'days_since_last_transaction', datatype: 'FP32', shape: [-1] },
      ],
      outputs: [
        { name: 'fraud_probability', datatype: 'FP32', shape: [-1] },
        { name: 'decision', datatype: 'BYTES', shape: [-1] },
      ],
    };
    const rest = await request(`${a.url}/v2/models/fraud`, { headers: AUTH });
    assert.equal(rest.status, 200);
    assert.deepEqual(conforms(metadata_model_response, rest.body), expectedFraud);
    const viaGrpc = (await rpc(c, 'ModelMetadata', { name: 'fraud', version: '1' })).response;
    const asNumbers = (ts: { name: string; datatype: string; shape: string[] }[]) => ts.map((t) => ({ ...t, shape: t.shape.map(Number) }));
    assert.deepEqual({ ...viaGrpc, inputs: asNumbers(viaGrpc.inputs), outputs: asNumbers(viaGrpc.outputs) }, expectedFraud);

    // Every other model: its graph's signature as the registry learnt it from the worker.
    const registry = (await request(`${a.url}/models/species`, { headers: AUTH })).body;
    const signature = registry.versions.find((v: { state: string }) => v.state === 'loaded').signature;
    const DT: Record<string, string> = { float32: 'FP32', float64: 'FP64', int64: 'INT64', int32: 'INT32', bool: 'BOOL', string: 'BYTES' };
    const expected = (ts: { name: string; type: string; shape: (number | string)[] }[]) =>
      ts.map((t) => ({ name: t.name, datatype: DT[t.type], shape: t.shape.map((d) => (typeof d === 'number' ? d : -1)) }));
    const species = conforms(metadata_model_response, (await request(`${a.url}/v2/models/species`, { headers: AUTH })).body);
    assert.deepEqual(species.inputs, expected(signature.inputs));
    assert.deepEqual(species.outputs, expected(signature.outputs));

    conforms(ready_model_response, (await request(`${a.url}/v2/models/species/ready`, { headers: AUTH })).body);
    assert.deepEqual((await rpc(c, 'ModelReady', { name: 'fraud' })).response, { ready: true });
  });

  test('fraud over REST, gRPC typed, gRPC raw and /predict: the same fraud_probability for 1,000 records', async () => {
    const records = generateFraudRecords(2026, 1000);
    const predict = await postJson(`${a.url}/predict/batch`, { records }, AUTH);
    assert.equal(predict.status, 200, JSON.stringify(predict.body));
    const expected: number[] = predict.body.results.map((r: { fraud_probability: number }) => r.fraud_probability);
    const decisions: string[] = predict.body.results.map((r: { decision: string }) => r.decision);

    const rest = await postJson(`${a.url}/v2/models/fraud/infer`, { id: 'batch-1', inputs: fraudRestInputs(records) }, AUTH);
    assert.equal(rest.status, 200, JSON.stringify(rest.body));
    const body = conforms(inference_response, rest.body);
    assert.equal(body.id, 'batch-1');
    assert.equal(body.model_name, 'fraud');
    assert.equal(body.model_version, predict.body.model_version);
    const p = restOutput(body, 'fraud_probability');
    assert.deepEqual([p.datatype, p.shape], ['FP32', [1000]]);
    assert.deepEqual(p.data, expected);
    assert.deepEqual(restOutput(body, 'decision').data, decisions);
    for (const k of ['queue_ms', 'batch_wait_ms', 'inference_ms', 'batch_records']) assert.equal(typeof body.parameters?.[k], 'number', k);

    const typed = await rpc(c, 'ModelInfer', { model_name: 'fraud', id: 'g1', inputs: fraudGrpcTyped(records) });
    assert.equal(typed.response.model_version, predict.body.model_version);
    assert.equal(typed.response.id, 'g1');
    const [probability, decision] = typed.response.outputs;
    assert.deepEqual([probability.name, probability.datatype, probability.shape], ['fraud_probability', 'FP32', ['1000']]);
    assert.deepEqual(probability.contents.fp32_contents, expected);
    assert.deepEqual(decision.contents.bytes_contents.map(String), decisions);
    assert.ok(Number(typed.trailer.get('batch_records')[0]) >= 1000);
    assert.ok(typed.response.parameters.inference_ms.double_param >= 0);

    const raw = await rpc(c, 'ModelInfer', { model_name: 'fraud', model_version: '1', ...fraudGrpcRaw(records) });
    assert.equal(raw.response.outputs[0].contents, null);
    // FP32 inputs are what the model's float32 features hold: the scores are the same.
    assert.deepEqual(float32s(raw.response.raw_output_contents[0]), expected);

    // Selected outputs only, in the order asked.
    const one = await postJson(
      `${a.url}/v2/models/fraud/versions/1/infer`,
      { inputs: fraudRestInputs(records.slice(0, 3)), outputs: [{ name: 'decision' }] },
      AUTH,
    );
    assert.deepEqual(
      conforms(inference_response, one.body).outputs.map((o) => o.name),
      ['decision'],
    );
  });

  test('species over REST and gRPC gives what /models/species/predict/batch gives', async () => {
    const rows = generateSpeciesRows(11, 20);
    const measurements = Array.from({ length: rows.rows }, (_, r) => Array.from(rows.features.subarray(r * 4, r * 4 + 4)));
    const registry = (await request(`${a.url}/models/species`, { headers: AUTH })).body;
    const loadedVersion = registry.versions.find((v: { state: string }) => v.state === 'loaded');
    const input = loadedVersion.signature.inputs[0];
    const labels: Record<string, string[]> = loadedVersion.class_labels ?? {};
    const byRecords = await postJson(`${a.url}/models/species/predict/batch`, { records: measurements.map((m) => ({ [input.name]: m })) }, AUTH);
    assert.equal(byRecords.status, 200, JSON.stringify(byRecords.body));

    const rest = await postJson(
      `${a.url}/v2/models/species/infer`,
      { inputs: [{ name: input.name, shape: [rows.rows, 4], datatype: 'FP32', data: measurements }] },
      AUTH,
    );
    assert.equal(rest.status, 200, JSON.stringify(rest.body));
    const body = conforms(inference_response, rest.body);
    const viaGrpc = await rpc(c, 'ModelInfer', {
      model_name: 'species',
      inputs: [{ name: input.name, datatype: 'FP32', shape: [String(rows.rows), '4'], contents: { fp32_contents: measurements.flat() } }],
    });
    for (const output of loadedVersion.signature.outputs as { name: string; type: string }[]) {
      // What the records route shows with class labels applied, back in the graph's own terms.
      const names = labels[output.name];
      const fromRecords = byRecords.body.results.map((r: Record<string, unknown>) => {
        const v = r[output.name];
        if (names && typeof v === 'string') return names.indexOf(v);
        if (names && v && typeof v === 'object' && !Array.isArray(v)) return names.map((l) => (v as Record<string, number>)[l]);
        return v;
      });
      const restOut = restOutput(body, output.name);
      assert.deepEqual(restOut.data, fromRecords.flat(), output.name);
      assert.equal(restOut.shape[0], rows.rows);
      const grpcOut = viaGrpc.response.outputs.find((o: { name: string }) => o.name === output.name);
      const values = Object.values(grpcOut.contents as Record<string, unknown[]>).find((v) => v.length > 0)!;
      assert.deepEqual(
        values.map((v) => (typeof v === 'string' ? Number(v) : v)),
        fromRecords.flat(),
        output.name,
      );
    }
  });

  // The protocol paths send their tensors as one columnar call (tensor-columns.ts): a column of the
  // wrong length or datatype is refused here, at the api, before any job is made.
  test('bad input is refused naming the input, over both transports, and nothing is enqueued', async () => {
    const records = generateFraudRecords(7, 3);
    const before = await jobsEverAdded();
    const restCases: [string, (inputs: RestInput[]) => RestInput[], RegExp][] = [
      ['shape and data disagree', (ins) => ins.map((i) => (i.name === 'transaction_amount' ? { ...i, shape: [2] } : i)), /transaction_amount/],
      ['unknown input', (ins) => [...ins, { name: 'velocity', shape: [3], datatype: 'FP32', data: [1, 2, 3] }], /velocity/],
      ['missing input', (ins) => ins.filter((i) => i.name !== 'card_present'), /card_present/],
      ['wrong datatype', (ins) => ins.map((i) => (i.name === 'hour_of_day' ? { ...i, datatype: 'FP32' } : i)), /hour_of_day/],
      [
        'a column one record short',
        (ins) => ins.map((i) => (i.name === 'transaction_amount' ? { ...i, shape: [2], data: i.data.slice(0, 2) } : i)),
        /"transaction_amount" one of 2/,
      ],
      [
        'a lone surrogate in BYTES',
        (ins) => ins.map((i) => (i.name === 'merchant_category' ? { ...i, data: ['travel', '\ud800', 'grocery'] } : i)),
        /merchant_category.*UTF-8/,
      ],
      ['a value /predict refuses', (ins) => ins.map((i) => (i.name === 'hour_of_day' ? { ...i, data: [[1], [30], [2]] } : i)), /hour_of_day/],
    ];
    for (const [what, change, message] of restCases) {
      const res = await postJson(`${a.url}/v2/models/fraud/infer`, { inputs: change(fraudRestInputs(records)) }, AUTH);
      assert.equal(res.status, 400, `${what}: ${JSON.stringify(res.body)}`);
      assert.match(conforms(inference_error_response, res.body).error, message, what);
    }
    // 20 records: a call that travels as columns (COLUMNS_MIN_ROWS), checked the same way.
    const twenty = generateFraudRecords(9, 20);
    assert.ok(twenty.length >= COLUMNS_MIN_ROWS);
    const columnarCases: [string, (inputs: RestInput[]) => RestInput[], RegExp][] = [
      [
        'a column one record short',
        (ins) => ins.map((i) => (i.name === 'days_since_last_transaction' ? { ...i, shape: [19], data: i.data.slice(0, 19) } : i)),
        /"days_since_last_transaction" holds a batch of 19/,
      ],
      [
        'wrong datatype',
        (ins) => ins.map((i) => (i.name === 'card_present' ? { ...i, datatype: 'INT32', data: i.data.map(Number) } : i)),
        /card_present/,
      ],
      [
        'a value /predict refuses',
        (ins) => ins.map((i) => (i.name === 'hour_of_day' ? { ...i, data: i.data.map((h, k) => (k === 17 ? [24] : h)) } : i)),
        /input "hour_of_day": element 17/,
      ],
    ];
    for (const [what, change, message] of columnarCases) {
      const res = await postJson(`${a.url}/v2/models/fraud/infer`, { inputs: change(fraudRestInputs(twenty)) }, AUTH);
      assert.equal(res.status, 400, `columnar, ${what}: ${JSON.stringify(res.body)}`);
      assert.match(conforms(inference_error_response, res.body).error, message, `columnar, ${what}`);
    }
    const over = await postJson(`${a.url}/v2/models/fraud/infer`, { inputs: fraudRestInputs(generateFraudRecords(8, MAX_BATCH + 1)) }, AUTH);
    assert.equal(over.status, 400);
    assert.match(over.body.error, /transaction_amount.*limit/);

    const typed = fraudGrpcTyped(records);
    const withInput = (name: string, change: object) => typed.map((i) => (i.name === name ? { ...i, ...change } : i));
    const grpcCases: [string, object[], RegExp][] = [
      ['shape and data disagree', withInput('card_present', { shape: ['4'] }), /card_present/],
      ['unknown input', [...typed, { name: 'velocity', datatype: 'FP32', shape: ['3'], contents: { fp32_contents: [1, 2, 3] } }], /velocity/],
      ['missing input', typed.filter((i) => i.name !== 'merchant_category'), /merchant_category/],
      ['wrong datatype', withInput('card_present', { datatype: 'INT32', contents: { int_contents: [1, 0, 1] } }), /card_present/],
      ['a column one record short', withInput('days_since_last_transaction', { shape: ['2'], contents: { fp64_contents: [1, 2] } }), /batch of 2/],
      [
        'bytes that are not UTF-8',
        withInput('merchant_category', { contents: { bytes_contents: [Buffer.from('a'), Buffer.from([0xff, 0xfe]), Buffer.from('b')] } }),
        /merchant_category.*UTF-8/,
      ],
      ['NaN', withInput('days_since_last_transaction', { contents: { fp64_contents: [1, NaN, 2] } }), /days_since_last_transaction/],
    ];
    for (const [what, inputs, message] of grpcCases) {
      await fails(rpc(c, 'ModelInfer', { model_name: 'fraud', inputs }), grpc.status.INVALID_ARGUMENT, message).catch((e: Error) => {
        throw new Error(`${what}: ${e.message}`);
      });
    }
    await fails(
      rpc(c, 'ModelInfer', { model_name: 'fraud', inputs: fraudGrpcTyped(generateFraudRecords(8, MAX_BATCH + 1)) }),
      grpc.status.INVALID_ARGUMENT,
      /limit/,
    );
    assert.equal(await jobsEverAdded(), before, 'a refused call reached the queue');
  });

  test('unknown model or version: 404 / NOT_FOUND; no key: 401 / UNAUTHENTICATED', async () => {
    const records = generateFraudRecords(7, 2);
    for (const path of ['/v2/models/nosuch/infer', '/v2/models/fraud/versions/9/infer']) {
      const res = await postJson(a.url + path, { inputs: fraudRestInputs(records) }, AUTH);
      assert.equal(res.status, 404, path);
      conforms(inference_error_response, res.body);
    }
    assert.equal((await request(`${a.url}/v2/models/nosuch`, { headers: AUTH })).status, 404);
    await fails(rpc(c, 'ModelInfer', { model_name: 'nosuch', inputs: fraudGrpcTyped(records) }), grpc.status.NOT_FOUND);
    await fails(rpc(c, 'ModelMetadata', { name: 'fraud', version: '9' }), grpc.status.NOT_FOUND);

    const open = await postJson(`${a.url}/v2/models/fraud/infer`, { inputs: fraudRestInputs(records) });
    assert.equal(open.status, 401);
    conforms(inference_error_response, open.body);
    await fails(
      rpc(c, 'ModelInfer', { model_name: 'fraud', inputs: fraudGrpcTyped(records) }, { metadata: new grpc.Metadata() }),
      grpc.status.UNAUTHENTICATED,
    );
    const wrong = new grpc.Metadata();
    wrong.set('authorization', 'Bearer not-a-key');
    await fails(rpc(c, 'ModelMetadata', { name: 'fraud' }, { metadata: wrong }), grpc.status.UNAUTHENTICATED);
  });

  test('calls are counted by protocol', async () => {
    for (const protocol of ['http', 'rest', 'grpc']) {
      assert.ok((await readMetric(a.url, 'scoring_inference_calls_total', { protocol })) > 0, protocol);
    }
    assert.ok((await readMetric(a.url, 'scoring_inference_calls_total', { protocol: 'grpc', status: 'INVALID_ARGUMENT' })) > 0);
    assert.ok((await readMetric(a.url, 'scoring_inference_calls_total', { protocol: 'rest', status: '400' })) > 0);
    // The unknown model of the test above, counted as an error by its code on both transports.
    assert.ok((await readMetric(a.url, 'scoring_errors_total', { code: 'not_found', protocol: 'grpc', status: 'NOT_FOUND' })) > 0);
    assert.ok((await readMetric(a.url, 'scoring_errors_total', { code: 'not_found', protocol: 'http', status: '404' })) > 0);
  });

  test("a short gRPC deadline with a frozen worker: the job carries the call's deadline, the call ends DEADLINE_EXCEEDED", async () => {
    const records = generateFraudRecords(9, 1);
    assert.ok(w.proc.kill('SIGSTOP'));
    try {
      const deadline = Date.now() + 800;
      const call = rpc(c, 'ModelInfer', { model_name: 'fraud', inputs: fraudGrpcTyped(records) }, { deadline });
      const job = await waitFor(async () => (await queue.getJobs(['waiting', 'active'])).find((j) => j?.data.calls.length), {
        what: 'the call queued',
      });
      // The gRPC deadline travels in the job (less the transit of the deadline header, which carries milliseconds).
      assert.ok(Math.abs(job.data.calls[0]!.deadline - deadline) < 250, `job deadline ${job.data.calls[0]!.deadline} vs ${deadline}`);
      await fails(call, grpc.status.DEADLINE_EXCEEDED);
    } finally {
      w.proc.kill('SIGCONT');
    }
    await waitFor(
      async () => (await rpc(c, 'ModelInfer', { model_name: 'fraud', inputs: fraudGrpcTyped(records) }).catch(() => undefined)) !== undefined,
      {
        timeoutMs: 20_000,
        what: 'an answer after the worker thawed',
      },
    );
  });

  test('SIGTERM drains an in-flight gRPC call: it is answered, then the api exits 0', async () => {
    const b = await api();
    const cb = client(b.grpcPort);
    await waitFor(async () => (await request(`${b.url}/v2/health/ready`)).status === 200, { what: 'the second api ready' });
    const records = generateFraudRecords(10, 5);
    assert.ok(w.proc.kill('SIGSTOP'));
    let answer: Promise<Answer>;
    try {
      answer = rpc(cb, 'ModelInfer', { model_name: 'fraud', inputs: fraudGrpcTyped(records) }, { deadline: Date.now() + 15_000 });
      await waitFor(async () => (await queue.getJobs(['waiting'])).some((j) => j?.data.calls.length), { what: 'the call queued' });
      const exited = b.stop('SIGTERM');
      // Draining: new calls are refused while the one in flight waits for its reply, and the api for it.
      await waitFor(
        async () => {
          const probe = client(b.grpcPort);
          const refused = await rpc(probe, 'ServerLive', {}, { deadline: Date.now() + 2000 }).then(
            () => false,
            (e: grpc.ServiceError) => e.code === grpc.status.UNAVAILABLE,
          );
          probe.close();
          return refused;
        },
        { what: 'new gRPC calls refused' },
      );
      assert.equal(b.proc.exitCode, null, 'the api exited with a call in flight');
      w.proc.kill('SIGCONT');
      const { response } = await answer;
      assert.equal(response.outputs[0].contents.fp32_contents.length, 5);
      assert.equal(await exited, 0, b.output());
    } finally {
      w.proc.kill('SIGCONT');
    }
  });
});

test('with no worker holding a model: 503 / UNAVAILABLE at once, nothing enqueued', async () => {
  // A prefix no worker serves: the api knows of no live worker.
  const lone = await api({ QUEUE_PREFIX: `${PREFIX}-alone` });
  const c = client(lone.grpcPort);
  const records = generateFraudRecords(12, 2);
  const rest = await postJson(`${lone.url}/v2/models/fraud/infer`, { inputs: fraudRestInputs(records) }, AUTH);
  assert.equal(rest.status, 503, JSON.stringify(rest.body));
  conforms(inference_error_response, rest.body);
  assert.equal((await request(`${lone.url}/v2/health/ready`)).status, 503);
  await fails(rpc(c, 'ModelInfer', { model_name: 'fraud', inputs: fraudGrpcTyped(records) }), grpc.status.UNAVAILABLE);
  assert.deepEqual((await rpc(c, 'ServerReady', {})).response, { ready: false });
  assert.equal(Number((await redis.client.get(`${PREFIX}-alone:${FRAUD_QUEUE}:id`)) ?? 0), 0);
});
