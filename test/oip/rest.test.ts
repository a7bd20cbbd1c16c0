// The protocol's REST routes as a client calls them: plain HTTP on a real port, every
// response checked against the protocol's schemas. The backend is the in-process fixture.
import { test, after } from 'node:test';
import assert from 'node:assert/strict';
import Fastify, { type FastifyInstance } from 'fastify';
import { serializerCompiler, validatorCompiler } from 'fastify-type-provider-zod';
import type { z } from 'zod';
import errorsPlugin from '../../src/api/plugins/errors.ts';
import authPlugin from '../../src/api/plugins/auth.ts';
import openapiPlugin from '../../src/api/plugins/openapi.ts';
import { oipRestRoutes } from '../../src/api/oip/rest.ts';
import { DATATYPES, jsonData, tensorFromJson } from '../../src/api/oip/tensors.ts';
import { FixtureBackend, MIRROR_INPUTS, mirrorOf, scaleOf } from './fixture-backend.ts';
import * as schemas from './oip-schemas.ts';
import { SAMPLES } from './samples.ts';
import { waitFor } from '../helpers/wait.ts';

const TIMEOUT_MS = 2000;

async function start(options: { apiKeys?: string[]; timeoutMs?: number } = {}) {
  const backend = new FixtureBackend();
  // A test that hangs up mid-call leaves undici's pooled keep-alive sockets that Node does not
  // count as idle (plain Fastify does the same), so close() would wait out their keep-alive.
  const app: FastifyInstance = Fastify({ logger: false, forceCloseConnections: true });
  // As the api does (app.ts): JSON only by default.
  app.removeContentTypeParser('text/plain');
  app.setValidatorCompiler(validatorCompiler);
  app.setSerializerCompiler(serializerCompiler);
  await app.register(errorsPlugin);
  await app.register(authPlugin, { apiKeys: options.apiKeys ?? [], adminApiKeys: [] });
  await app.register(openapiPlugin, { docsPublic: true });
  await app.register(oipRestRoutes, { backend, timeoutMs: options.timeoutMs ?? TIMEOUT_MS, maxBatch: 8 });
  const address = await app.listen({ port: 0, host: '127.0.0.1' });
  after(() => app.close());
  return { backend, url: address };
}

type Reply = { status: number; headers: Headers; body: unknown; text: string };

async function http(url: string, method: string, path: string, body?: unknown, headers: Record<string, string> = {}): Promise<Reply> {
  const init: RequestInit = { method, headers: { ...headers } };
  if (body !== undefined) {
    init.body = typeof body === 'string' ? body : JSON.stringify(body);
    (init.headers as Record<string, string>)['content-type'] = 'application/json';
  }
  const response = await fetch(url + path, init);
  const text = await response.text();
  return { status: response.status, headers: response.headers, text, body: text ? JSON.parse(text) : undefined };
}

function errorReply(reply: Reply, status: number, message: RegExp) {
  assert.equal(reply.status, status, reply.text);
  const body = schemas.conforms(schemas.inference_error_response, reply.body);
  assert.deepEqual(Object.keys(body), ['error']);
  assert.match(body.error, message);
}

function ok<T>(reply: Reply, schema: z.ZodType<T>): T {
  assert.equal(reply.status, 200, reply.text);
  return schemas.conforms(schema, reply.body);
}

const { backend, url } = await start();

function mirrorRequest() {
  return {
    id: 'call-42',
    parameters: { note: 'ignored' },
    inputs: DATATYPES.map((datatype, i) => {
      const values = SAMPLES[datatype];
      // Half the inputs nested, half flat: both are the protocol's forms.
      const data = i % 2 ? [values.slice(0, 2), values.slice(2)] : values;
      return { name: MIRROR_INPUTS[datatype], shape: [2, 2], datatype, data };
    }),
  };
}

function scaleRequest(x: number[], weight: number[], outputs?: string[]) {
  return {
    inputs: [
      { name: 'x', shape: [weight.length, 3], datatype: 'FP32', data: x },
      { name: 'weight', shape: [weight.length], datatype: 'FP64', data: weight },
    ],
    ...(outputs && { outputs: outputs.map((name) => ({ name })) }),
  };
}

test('GET /v2 gives the server metadata', async () => {
  const body = ok(await http(url, 'GET', '/v2'), schemas.metadata_server_response);
  assert.deepEqual(body, { name: 'fixture', version: '0.0.0', extensions: [] });
  ok(await http(url, 'GET', '/v2/'), schemas.metadata_server_response);
});

test('health: live is 200; ready follows the backend, 503 with an error body when not ready', async () => {
  assert.deepEqual(ok(await http(url, 'GET', '/v2/health/live'), schemas.live_server_response), { live: true });
  assert.deepEqual(ok(await http(url, 'GET', '/v2/health/ready'), schemas.ready_server_response), { ready: true });
  backend.ready = false;
  try {
    errorReply(await http(url, 'GET', '/v2/health/ready'), 503, /not ready/);
    errorReply(await http(url, 'GET', '/v2/models/scale/ready'), 503, /Model "scale" is not ready/);
  } finally {
    backend.ready = true;
  }
  for (const path of ['/v2/models/scale/ready', '/v2/models/scale/versions/1/ready']) {
    assert.deepEqual(ok(await http(url, 'GET', path), schemas.ready_model_response), { name: 'scale', ready: true });
  }
  errorReply(await http(url, 'GET', '/v2/models/scale/versions/7/ready'), 404, /Model "scale" has no version "7"/);
});

test('model metadata names inputs and outputs with -1 for the batch dimension, nothing internal', async () => {
  for (const path of ['/v2/models/scale', '/v2/models/scale/versions/1']) {
    const body = ok(await http(url, 'GET', path), schemas.metadata_model_response);
    assert.deepEqual(body, {
      name: 'scale',
      versions: ['1', '2'],
      platform: 'fixture_scale',
      inputs: [
        { name: 'x', datatype: 'FP32', shape: [-1, 3] },
        { name: 'weight', datatype: 'FP32', shape: [-1, 1] },
      ],
      outputs: [
        { name: 'y', datatype: 'FP32', shape: [-1] },
        { name: 'label', datatype: 'BYTES', shape: [-1] },
        { name: 'version', datatype: 'INT64', shape: [-1] },
      ],
    });
  }
  errorReply(await http(url, 'GET', '/v2/models/nope'), 404, /Unknown model "nope"/);
  errorReply(await http(url, 'GET', '/v2/models/scale/versions/3'), 404, /has no version "3"/);
});

test('infer: every datatype in, every datatype out, id echoed, timings in parameters', async () => {
  const before = Date.now();
  const body = ok(await http(url, 'POST', '/v2/models/mirror/infer', mirrorRequest()), schemas.inference_response);
  assert.equal(body.model_name, 'mirror');
  assert.equal(body.model_version, '1');
  assert.equal(body.id, 'call-42');
  const parameters = body.parameters as Record<string, unknown>;
  assert.deepEqual(Object.keys(parameters).sort(), ['batch_records', 'batch_wait_ms', 'inference_ms', 'queue_ms']);
  assert.equal(parameters.batch_records, 2);
  for (const key of ['queue_ms', 'batch_wait_ms', 'inference_ms']) assert.equal(typeof parameters[key], 'number');
  assert.deepEqual(
    body.outputs.map((o) => o.name),
    DATATYPES.map((d) => `${MIRROR_INPUTS[d]}_out`),
  );
  for (const datatype of DATATYPES) {
    const output = body.outputs.find((o) => o.name === `${MIRROR_INPUTS[datatype]}_out`)!;
    assert.equal(output.datatype, datatype);
    assert.deepEqual(output.shape, [2, 2]);
    assert.deepEqual(output.data, jsonData(mirrorOf(tensorFromJson('t', datatype, [4], SAMPLES[datatype]))), datatype);
  }
  const deadline = backend.lastOptions!.deadlineMs;
  assert.ok(deadline >= before + TIMEOUT_MS && deadline <= Date.now() + TIMEOUT_MS, 'the deadline is the call timeout from arrival');
});

test('infer: a version in the path, an outputs list that selects, no id when none was sent', async () => {
  const x = [0.1, 0.2, 0.3, 1, 2, 3];
  const weight = [1, 0.5];
  const v1 = ok(await http(url, 'POST', '/v2/models/scale/versions/1/infer', scaleRequest(x, weight)), schemas.inference_response);
  assert.equal(v1.model_version, '1');
  assert.equal('id' in v1, false);
  const expected = scaleOf(x, weight, 1);
  assert.deepEqual(
    v1.outputs.map((o) => o.name),
    ['y', 'label', 'version'],
  );
  assert.deepEqual(v1.outputs[0]!.data, Array.from(expected.y));
  assert.deepEqual(v1.outputs[1]!.data, expected.label);
  assert.deepEqual(v1.outputs[2]!.data, [1, 1]);

  const selected = ok(await http(url, 'POST', '/v2/models/scale/infer', scaleRequest(x, weight, ['label', 'y'])), schemas.inference_response);
  assert.equal(selected.model_version, '2');
  assert.deepEqual(
    selected.outputs.map((o) => o.name),
    ['label', 'y'],
  );
  assert.deepEqual(selected.outputs[1]!.data, Array.from(scaleOf(x, weight, 2).y));
  assert.deepEqual(backend.lastOptions!.outputs, ['label', 'y']);
});

test('bad input gets 400 naming the input, and nothing reaches the backend', async () => {
  const x = [1, 2, 3];
  const cases: [string, unknown, RegExp][] = [
    ['shape and data disagree', scaleRequest([1, 2], [1]), /input "x": shape \[1,3\] holds 3 elements but the data has 2/],
    ['unknown input', { inputs: [...scaleRequest(x, [1]).inputs, { name: 'z', shape: [1], datatype: 'FP32', data: [1] }] }, /unknown input "z"/],
    ['missing input', { inputs: scaleRequest(x, [1]).inputs.slice(0, 1) }, /missing input "weight"/],
    [
      'wrong datatype',
      { inputs: [{ ...scaleRequest(x, [1]).inputs[0], datatype: 'INT32' }, scaleRequest(x, [1]).inputs[1]] },
      /input "x" has datatype INT32; the model takes FP32 or FP64/,
    ],
    ['FP16', { inputs: [{ ...scaleRequest(x, [1]).inputs[0], datatype: 'FP16' }] }, /input "x": datatype FP16 is not supported/],
    ['batch over the limit', scaleRequest(Array(27).fill(0), Array(9).fill(1)), /input "x" holds a batch of 9; the limit is 8/],
    ['unknown output', scaleRequest(x, [1], ['score']), /unknown output "score"/],
    ['input given twice', { inputs: [scaleRequest(x, [1]).inputs[0], ...scaleRequest(x, [1]).inputs] }, /input "x" is given twice/],
    ['no inputs', { id: '1' }, /"inputs" must be an array/],
    ['input without data', { inputs: [{ name: 'x', shape: [1], datatype: 'FP32' }] }, /inputs\[0\] has no "data"/],
    ['id not a string', { id: 5, inputs: [] }, /"id" must be a string/],
    ['body not an object', [1, 2], /the body must be a JSON object/],
  ];
  const calls = backend.calls;
  for (const [what, body, message] of cases) {
    const reply = await http(url, 'POST', '/v2/models/scale/infer', body);
    assert.equal(reply.status, 400, `${what}: ${reply.text}`);
    errorReply(reply, 400, message);
  }
  const surrogate = '{"inputs":[{"name":"s","shape":[1],"datatype":"BYTES","data":["\\ud800"]}]}';
  errorReply(await http(url, 'POST', '/v2/models/mirror/infer', surrogate), 400, /input "s": element 0 is not valid UTF-8/);
  errorReply(await http(url, 'POST', '/v2/models/scale/infer', '{"inputs": ['), 400, /JSON/);
  const binary = await http(url, 'POST', '/v2/models/scale/infer', '{}', { 'inference-header-content-length': '2' });
  errorReply(binary, 400, /binary tensor data extension is not supported/);
  assert.equal(backend.calls, calls, 'no bad call reached the backend');
});

test('backend faults map to 429, 503 and 504 with the protocol error body', async () => {
  const body = scaleRequest([1, 2, 3], [1]);
  backend.fault = 'overloaded';
  try {
    const reply = await http(url, 'POST', '/v2/models/scale/infer', body);
    errorReply(reply, 429, /queue bound/);
    assert.equal(reply.headers.get('retry-after'), '1');
    backend.fault = 'unavailable';
    errorReply(await http(url, 'POST', '/v2/models/scale/infer', body), 503, /No worker holds the model/);
  } finally {
    backend.fault = undefined;
  }
  const short = await start({ timeoutMs: 150 });
  short.backend.fault = 'hold';
  errorReply(await http(short.url, 'POST', '/v2/models/scale/infer', body), 504, /deadline/);
});

test('unknown routes under /v2 answer in the protocol shape; the rest of the api keeps its own', async () => {
  errorReply(await http(url, 'GET', '/v2/models/scale/nothing'), 404, /No route GET \/v2\/models\/scale\/nothing/);
  const outside = await http(url, 'GET', '/nothing');
  assert.equal(outside.status, 404);
  assert.equal((outside.body as { error: { code: string } }).error.code, 'not_found');
});

test('with API keys, inference needs a bearer key and health stays open', async () => {
  const secured = await start({ apiKeys: ['k1'] });
  const body = scaleRequest([1, 2, 3], [1]);
  errorReply(await http(secured.url, 'POST', '/v2/models/scale/infer', body), 401, /Bearer/);
  errorReply(await http(secured.url, 'GET', '/v2/models/scale', undefined, { authorization: 'Bearer nope' }), 401, /Bearer/);
  ok(await http(secured.url, 'GET', '/v2/health/live'), schemas.live_server_response);
  ok(await http(secured.url, 'GET', '/v2/health/ready'), schemas.ready_server_response);
  const reply = await http(secured.url, 'POST', '/v2/models/scale/infer', body, { authorization: 'Bearer k1' });
  ok(reply, schemas.inference_response);
  // A path the protocol does not define: refused, then not found, in the protocol's shape.
  const unknown = await http(secured.url, 'GET', '/v2/no/such/route');
  errorReply(unknown, 401, /Bearer/);
  assert.equal(unknown.headers.get('www-authenticate'), 'Bearer');
  errorReply(await http(secured.url, 'GET', '/v2/no/such/route', undefined, { authorization: 'Bearer k1' }), 404, /No route/);
  // Outside /v2 the service's own shape stays.
  const outside = await http(secured.url, 'GET', '/no/such/route');
  assert.equal(outside.status, 401);
  assert.equal((outside.body as { error: { code: string } }).error.code, 'unauthorized');
});

test('the routes are listed in /openapi.json under the protocol tag', async () => {
  const doc = (await http(url, 'GET', '/openapi.json')).body as {
    paths: Record<string, Record<string, { tags?: string[] }>>;
    tags: { name: string }[];
  };
  assert.ok(
    doc.tags.some((tag) => tag.name === 'Open Inference Protocol'),
    'the tag is declared',
  );
  // Once, without the trailing slash (redocly's no-path-trailing-slash); GET /v2/ still answers.
  assert.equal(doc.paths['/v2/'], undefined);
  for (const path of ['/v2', '/v2/health/live', '/v2/health/ready', '/v2/models/{model}', '/v2/models/{model}/versions/{version}/infer']) {
    const operation = Object.values(doc.paths[path] ?? {})[0];
    assert.deepEqual(operation?.tags, ['Open Inference Protocol'], path);
  }
});

test('a body without a JSON content type is read as JSON, as Triton and KServe do', async () => {
  for (const type of [undefined, 'text/plain', 'application/octet-stream']) {
    const response = await fetch(`${url}/v2/models/scale/infer`, {
      method: 'POST',
      body: JSON.stringify(scaleRequest([1, 2, 3], [1])),
      ...(type && { headers: { 'content-type': type } }),
    });
    assert.equal(response.status, 200, String(type));
    schemas.conforms(schemas.inference_response, await response.json());
  }
});

test('a client that hangs up aborts the signal the backend holds; an answered one does not', async () => {
  await http(url, 'POST', '/v2/models/scale/infer', scaleRequest([1, 2, 3], [1]));
  const answered = backend.lastOptions!.signal!;
  backend.fault = 'hold';
  try {
    const controller = new AbortController();
    const held = backend.nextHeld();
    const pending = fetch(`${url}/v2/models/scale/infer`, {
      method: 'POST',
      headers: { 'content-type': 'application/json' },
      body: JSON.stringify(scaleRequest([1, 2, 3], [1])),
      signal: controller.signal,
    }).catch((e: Error) => e);
    const options = await held;
    controller.abort();
    await pending;
    await waitFor(() => options.signal?.aborted, { what: 'the backend to see the hang-up' });
  } finally {
    backend.fault = undefined;
  }
  assert.equal(answered.aborted, false);
});
