// Traces across the queue, exported over OTLP/HTTP to a receiver in the test: one /predict
// yields one trace holding the api's and the worker's spans, and the worker's batch span links
// back to the request; a bulk job's trace holds a span per chunk, from the worker.
import { after, before, describe, test } from 'node:test';
import assert from 'node:assert/strict';
import { startTestRedis, type TestRedis } from '../helpers/redis-server.ts';
import { startApi, startWorker, type ServiceProcess } from '../helpers/processes.ts';
import { postJson, request } from '../helpers/http.ts';
import { waitFor } from '../helpers/wait.ts';
import { generateFraudRecords } from '../../scripts/model/fraud-data.ts';
import { startOtlpReceiver, type OtlpReceiver, type ReceivedSpan } from './otlp-receiver.ts';
import * as grpc from '@grpc/grpc-js';
import * as protoLoader from '@grpc/proto-loader';
import { freePort } from '../helpers/ports.ts';
import { OIP_PROTO_PATH, PROTO_LOADER_OPTIONS } from '../../src/api/oip/protos.ts';

let redis: TestRedis;
let receiver: OtlpReceiver;
let a: ServiceProcess;
let w: ServiceProcess;
let grpcPort: number;

before(async () => {
  [redis, receiver, grpcPort] = await Promise.all([startTestRedis(), startOtlpReceiver(), freePort()]);
  const env = {
    GRPC_PORT: String(grpcPort),
    REDIS_URL: redis.url,
    QUEUE_PREFIX: 'telemetry-traces',
    OTEL_EXPORTER_OTLP_ENDPOINT: receiver.url,
    OTEL_EXPORTER_OTLP_PROTOCOL: 'http/json',
    OTEL_BSP_SCHEDULE_DELAY: '100',
    BULK_CHUNK_SIZE: '10',
  };
  [a, w] = await Promise.all([startApi(env), startWorker(env)]);
  await waitFor(async () => (await request(`${a.url}/ready`)).status === 200, { what: 'api ready' });
});

after(async () => {
  await Promise.all([a?.stop(), w?.stop()]);
  await receiver.close();
  await redis.close();
});

const byName = (spans: ReceivedSpan[], name: string) => spans.filter((s) => s.name === name);

test('one /predict: api and worker spans in one trace, and the batch span links to the request', async () => {
  const [record] = generateFraudRecords(21, 1);
  const res = await postJson(`${a.url}/predict`, record);
  assert.equal(res.status, 200);

  const http = await waitFor(() => receiver.spans.find((s) => s.service === 'scoring-api' && s.name === 'POST /predict'), {
    what: 'the HTTP server span',
  });
  assert.equal(http.attributes['http.route'], '/predict');
  assert.equal(http.attributes['http.response.status_code'], 200);
  const trace = () => receiver.spans.filter((s) => s.traceId === http.traceId);
  await waitFor(() => byName(trace(), 'process predict').length === 1 && byName(trace(), 'batch wait').length === 1, {
    what: "the worker's spans in the request's trace",
  });

  const send = byName(trace(), 'send predict')[0]!;
  assert.equal(send.service, 'scoring-api');
  assert.equal(send.parentSpanId, http.spanId, 'send predict is a child of the HTTP span');
  assert.equal(send.attributes['batch.size'], 1);
  assert.match(String(send.attributes['model.version']), /^fraud-/);

  const queueWait = byName(trace(), 'queue wait')[0]!;
  const process = byName(trace(), 'process predict')[0]!;
  assert.equal(queueWait.service, 'scoring-worker');
  assert.equal(process.service, 'scoring-worker');
  assert.equal(queueWait.parentSpanId, send.spanId);
  assert.equal(process.parentSpanId, send.spanId);
  assert.equal(byName(trace(), 'batch wait')[0]!.parentSpanId, process.spanId);
  assert.equal(process.attributes['batch.size'], 1);
  assert.match(String(process.attributes['model.version']), /^fraud-/);

  // The batch span lives in a trace of its own and links to the request it served, and back.
  assert.equal(process.links.length, 1);
  const batch = await waitFor(() => receiver.spans.find((s) => s.spanId === process.links[0]!.spanId), { what: 'the batch span' });
  assert.equal(batch.name, 'predict batch');
  assert.equal(batch.service, 'scoring-worker');
  assert.notEqual(batch.traceId, http.traceId);
  assert.deepEqual(batch.links, [{ traceId: send.traceId, spanId: send.spanId }]);
  assert.equal(batch.attributes['batch.size'], 1);
  const inference = await waitFor(() => receiver.spans.find((s) => s.name === 'inference' && s.parentSpanId === batch.spanId), {
    what: 'the inference span',
  });
  assert.equal(inference.traceId, batch.traceId);
});

test("one gRPC ModelInfer: a server span continues the client's trace, and the queue and worker spans join it", async () => {
  const [r] = generateFraudRecords(23, 1);
  const definition = protoLoader.loadSync(OIP_PROTO_PATH, PROTO_LOADER_OPTIONS);
  const { inference } = grpc.loadPackageDefinition(definition) as unknown as { inference: { GRPCInferenceService: grpc.ServiceClientConstructor } };
  const client = new inference.GRPCInferenceService(`127.0.0.1:${grpcPort}`, grpc.credentials.createInsecure()) as unknown as {
    ModelInfer: (req: object, metadata: grpc.Metadata, cb: (e: grpc.ServiceError | null, res: { outputs: unknown[] }) => void) => void;
    close: () => void;
  };
  // The client's own span, as a traced client sends it (W3C trace context in the call's metadata).
  const clientTrace = { traceId: '4bf92f3577b34da6a3ce929d0e0e4736', spanId: '00f067aa0ba902b7' };
  const metadata = new grpc.Metadata();
  metadata.set('traceparent', `00-${clientTrace.traceId}-${clientTrace.spanId}-01`);
  const tensor = (name: string, datatype: string, contents: object) => ({ name, datatype, shape: ['1'], contents });
  const response = await new Promise<{ outputs: unknown[] }>((resolve, reject) =>
    client.ModelInfer(
      {
        model_name: 'fraud',
        inputs: [
          tensor('transaction_amount', 'FP64', { fp64_contents: [r!.transaction_amount] }),
          tensor('merchant_category', 'BYTES', { bytes_contents: [Buffer.from(r!.merchant_category)] }),
          tensor('card_present', 'BOOL', { bool_contents: [r!.card_present] }),
          tensor('hour_of_day', 'INT32', { int_contents: [r!.hour_of_day] }),
          tensor('days_since_last_transaction', 'FP64', { fp64_contents: [r!.days_since_last_transaction] }),
        ],
      },
      metadata,
      (e, res) => (e ? reject(e) : resolve(res)),
    ),
  );
  client.close();
  assert.equal(response.outputs.length, 2);

  const server = await waitFor(
    () => receiver.spans.find((s) => s.service === 'scoring-api' && s.name === 'inference.GRPCInferenceService/ModelInfer'),
    { what: 'the gRPC server span' },
  );
  assert.equal(server.attributes['rpc.system'], 'grpc');
  assert.equal(server.attributes['rpc.method'], 'ModelInfer');
  assert.equal(server.attributes['rpc.grpc.status_code'], 0);
  assert.equal(server.traceId, clientTrace.traceId);
  assert.equal(server.parentSpanId, clientTrace.spanId);
  const trace = () => receiver.spans.filter((s) => s.traceId === server.traceId);
  await waitFor(() => byName(trace(), 'process predict').length === 1, { what: "the worker's span in the call's trace" });
  const send = byName(trace(), 'send predict')[0]!;
  assert.equal(send.parentSpanId, server.spanId, 'send predict is a child of the gRPC server span');
  assert.equal(byName(trace(), 'process predict')[0]!.parentSpanId, send.spanId);
});

test('concurrent /predict calls: one batch span links to every request it served', async () => {
  const records = generateFraudRecords(22, 16);
  const responses = await Promise.all(records.map((r) => postJson(`${a.url}/predict`, r)));
  assert.ok(responses.every((r) => r.status === 200));
  const sends = await waitFor(
    () => {
      const s = receiver.spans.filter((x) => x.name === 'send predict');
      return s.length >= 17 ? s.slice(-16) : undefined;
    },
    { what: '16 more send spans' },
  );
  const sendIds = new Set(sends.map((s) => s.spanId));
  const batches = await waitFor(
    () => {
      const b = receiver.spans.filter((s) => s.name === 'predict batch' && s.links.some((l) => sendIds.has(l.spanId)));
      const linked = b.flatMap((x) => x.links).filter((l) => sendIds.has(l.spanId));
      return linked.length === 16 ? b : undefined;
    },
    { what: 'every request linked from a batch span' },
  );
  assert.ok(batches.length < 16, `16 concurrent calls rode ${batches.length} batches`);
  for (const b of batches) assert.equal(b.links.length, b.attributes['batch.calls']);
});

describe('bulk', () => {
  test("a bulk job's trace holds a process span per chunk", async () => {
    const records = generateFraudRecords(23, 25);
    const res = await postJson(`${a.url}/jobs`, { records });
    assert.equal(res.status, 202, JSON.stringify(res.body));
    await waitFor(async () => (await request(`${a.url}/jobs/${res.body.job_id}`)).body.status === 'completed', {
      timeoutMs: 20_000,
      what: 'the bulk job to complete',
    });
    const http = await waitFor(() => receiver.spans.find((s) => s.name === 'POST /jobs'), { what: 'the POST /jobs span' });
    const chunks = await waitFor(
      () => {
        const c = receiver.spans.filter((s) => s.traceId === http.traceId && s.service === 'scoring-worker' && s.kind === 5);
        return c.length === 3 ? c : undefined;
      },
      { what: 'three chunk spans (25 records, chunks of 10) in the job trace' },
    );
    const producers = receiver.spans.filter((s) => s.traceId === http.traceId && s.kind === 4);
    assert.ok(producers.length >= 1, 'the enqueue of the chunks is a producer span');
    for (const c of chunks) {
      assert.ok(
        producers.some((p) => p.spanId === c.parentSpanId),
        `${c.name} is a child of an enqueue span`,
      );
    }
  });
});
