// A model that throws, seen through the Open Inference Protocol (issue 23): REST /v2 answers 500
// with the model's own message, gRPC INTERNAL with it, not "Internal server error", as /predict
// answers 500 model_error. The statuses come from the service's one error map.
import { after, before, test } from 'node:test';
import assert from 'node:assert/strict';
import { rm } from 'node:fs/promises';
import * as grpc from '@grpc/grpc-js';
import * as protoLoader from '@grpc/proto-loader';
import { startTestRedis, type TestRedis } from '../helpers/redis-server.ts';
import { startApi, startWorker, type ServiceProcess } from '../helpers/processes.ts';
import { freePort } from '../helpers/ports.ts';
import { postJson } from '../helpers/http.ts';
import { THROWING_AMOUNT, writeFaultyModel } from '../helpers/faulty-model.ts';
import { OIP_PROTO_PATH, PROTO_LOADER_OPTIONS } from '../../src/api/oip/protos.ts';

const MODEL_FAILED = /^model fraud version fraud-faulty-1\.0\.0\+\w+ failed: inference threw on a batch of 1 records$/;
const loaded = grpc.loadPackageDefinition(protoLoader.loadSync([OIP_PROTO_PATH], PROTO_LOADER_OPTIONS)) as unknown as {
  inference: { GRPCInferenceService: grpc.ServiceClientConstructor };
};

let redis: TestRedis;
let api: ServiceProcess;
let worker: ServiceProcess;
let grpcPort: number;
let modelDir: string;

before(async () => {
  redis = await startTestRedis();
  modelDir = await writeFaultyModel('models/fraud/1');
  grpcPort = await freePort();
  const env = { REDIS_URL: redis.url, QUEUE_PREFIX: 'model-error-oip' };
  [api, worker] = await Promise.all([startApi({ ...env, GRPC_PORT: String(grpcPort) }), startWorker({ ...env, MODEL_REPOSITORY: modelDir })]);
});
after(async () => {
  await Promise.all([api?.stop(), worker?.stop()]);
  await redis?.close();
  await rm(modelDir, { recursive: true, force: true });
});

const throwing = {
  transaction_amount: THROWING_AMOUNT,
  merchant_category: 'travel',
  card_present: false,
  hour_of_day: 3,
  days_since_last_transaction: 2,
};

test('REST /v2 infer: 500 with the model’s own message', async () => {
  const res = await postJson(`${api.url}/v2/models/fraud/infer`, {
    inputs: [
      { name: 'transaction_amount', shape: [1], datatype: 'FP64', data: [throwing.transaction_amount] },
      { name: 'merchant_category', shape: [1], datatype: 'BYTES', data: [throwing.merchant_category] },
      { name: 'card_present', shape: [1], datatype: 'BOOL', data: [throwing.card_present] },
      { name: 'hour_of_day', shape: [1], datatype: 'INT64', data: [throwing.hour_of_day] },
      { name: 'days_since_last_transaction', shape: [1], datatype: 'FP64', data: [throwing.days_since_last_transaction] },
    ],
  });
  assert.equal(res.status, 500, JSON.stringify(res.body));
  assert.match(res.body.error, MODEL_FAILED);
  assert.notEqual(res.body.error, 'Internal server error');
});

test('gRPC ModelInfer: INTERNAL with the model’s own message', async () => {
  const client = new loaded.inference.GRPCInferenceService(`127.0.0.1:${grpcPort}`, grpc.credentials.createInsecure());
  try {
    const error = await new Promise<grpc.ServiceError>((resolve, reject) => {
      (client as unknown as Record<string, Function>).ModelInfer!.call(
        client,
        {
          model_name: 'fraud',
          inputs: [
            { name: 'transaction_amount', datatype: 'FP64', shape: ['1'], contents: { fp64_contents: [throwing.transaction_amount] } },
            { name: 'merchant_category', datatype: 'BYTES', shape: ['1'], contents: { bytes_contents: [Buffer.from(throwing.merchant_category)] } },
            { name: 'card_present', datatype: 'BOOL', shape: ['1'], contents: { bool_contents: [throwing.card_present] } },
            { name: 'hour_of_day', datatype: 'INT32', shape: ['1'], contents: { int_contents: [throwing.hour_of_day] } },
            {
              name: 'days_since_last_transaction',
              datatype: 'FP64',
              shape: ['1'],
              contents: { fp64_contents: [throwing.days_since_last_transaction] },
            },
          ],
        },
        (err: grpc.ServiceError | null) => (err ? resolve(err) : reject(new Error('expected INTERNAL'))),
      );
    });
    assert.equal(error.code, grpc.status.INTERNAL, `${grpc.status[error.code]}: ${error.details}`);
    assert.match(error.details, MODEL_FAILED);
  } finally {
    client.close();
  }
});
