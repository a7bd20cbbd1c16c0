// The OpenAPI document as /openapi.json serves it (buildApp + inject): redocly's recommended
// rules find no error; every operation has an operationId, a tag and examples; POST /jobs and its
// results are documented in all three formats; error codes are enums that agree with their
// statuses; the contract's headers are there; no component is duplicated as `…Input`. The
// examples are the committed model's real answers, their decisions agree with the manifest's
// thresholds, and the documented job bodies are accepted as they are. /docs is open by default.
import { test } from 'node:test';
import assert from 'node:assert/strict';
import { execFile } from 'node:child_process';
import { mkdtemp, readFile, rm, writeFile } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { promisify } from 'node:util';
import { fileURLToPath } from 'node:url';
import { ERROR_CODES, type ErrorCode } from '../../src/shared/schemas/error.ts';
import { buildOpenapiExamples, EXAMPLES_FILE, examplesText } from '../../scripts/openapi-examples.ts';
import { buildTestApp } from '../helpers/app.ts';
import type { z } from 'zod';
import * as oip from '../oip/oip-schemas.ts';
import { conforms } from '../oip/oip-schemas.ts';

const ROOT = fileURLToPath(new URL('../..', import.meta.url));
const execFileAsync = promisify(execFile);

type Media = { schema?: Record<string, unknown>; examples?: Record<string, { value: unknown }> };
type Response = { description: string; headers?: Record<string, unknown>; content?: Record<string, Media> };
type Operation = {
  operationId?: string;
  tags?: string[];
  summary?: string;
  security?: unknown[];
  parameters?: { name: string; in: string }[];
  requestBody?: { content: Record<string, Media> };
  responses: Record<string, Response>;
};
type Document = {
  openapi: string;
  servers?: { url: string }[];
  tags?: { name: string }[];
  paths: Record<string, Record<string, Operation>>;
  components: { schemas: Record<string, unknown> };
};

async function fetchDocument(t: Parameters<typeof buildTestApp>[0], env: Record<string, string> = {}) {
  const { app } = await buildTestApp(t, env);
  const res = await app.inject({ method: 'GET', url: '/openapi.json' });
  assert.equal(res.statusCode, 200, res.body);
  return { app, doc: res.json<Document>(), text: res.body };
}

function operations(doc: Document): [string, Operation][] {
  return Object.entries(doc.paths).flatMap(([path, item]) =>
    Object.entries(item).map(([method, op]) => [`${method.toUpperCase()} ${path}`, op] as [string, Operation]),
  );
}

function op(doc: Document, path: string, method: string): Operation {
  const found = doc.paths[path]?.[method];
  assert.ok(found, `${method} ${path} is documented`);
  return found;
}

test('redocly lint (recommended rules) finds no error in /openapi.json', async (t) => {
  const { text } = await fetchDocument(t);
  const dir = await mkdtemp(join(tmpdir(), 'openapi-'));
  t.after(() => rm(dir, { recursive: true, force: true }));
  const file = join(dir, 'openapi.json');
  await writeFile(file, text);
  const { stdout } = await execFileAsync(join(ROOT, 'node_modules/.bin/redocly'), ['lint', '--extends', 'recommended', '--format', 'json', file], {
    cwd: dir,
    env: { ...process.env, REDOCLY_TELEMETRY: 'off', REDOCLY_SUPPRESS_UPDATE_NOTICE: 'true' },
  }).catch((err: { stdout?: string; message: string }) => {
    // redocly exits 1 when it finds errors; its report is still on stdout.
    if (err.stdout) return { stdout: err.stdout };
    throw err;
  });
  const report = JSON.parse(stdout) as {
    totals: { errors: number };
    problems: { ruleId: string; severity: string; message: string; location: { pointer: string }[] }[];
  };
  const errors = report.problems.filter((p) => p.severity === 'error').map((p) => `${p.ruleId} at ${p.location[0]?.pointer}: ${p.message}`);
  assert.deepEqual(errors, []);
  assert.equal(report.totals.errors, 0);
});

test('every operation has a unique operationId, a declared tag, a summary and an example of its success', async (t) => {
  const { doc } = await fetchDocument(t);
  assert.match(doc.openapi, /^3\.1\./);
  assert.ok(doc.servers && doc.servers.length > 0, 'a servers entry');
  const tags = new Set(doc.tags?.map((tag) => tag.name));
  const ids = new Set<string>();
  const all = operations(doc);
  assert.ok(all.length >= 9, `${all.length} operations`);
  for (const [name, operation] of all) {
    assert.ok(operation.operationId, `${name}: operationId`);
    assert.ok(!ids.has(operation.operationId), `${name}: operationId ${operation.operationId} is unique`);
    ids.add(operation.operationId);
    assert.ok(operation.tags?.length && operation.tags.every((tag) => tags.has(tag)), `${name}: a declared tag`);
    assert.ok(operation.summary, `${name}: a summary`);
    const success = Object.entries(operation.responses).filter(([status]) => status.startsWith('2'));
    assert.ok(success.length > 0, `${name}: a success response`);
    for (const [status, response] of success) {
      assert.notEqual(response.description, 'Default Response', `${name} ${status}: described`);
      for (const [type, media] of Object.entries(response.content ?? {})) {
        assert.ok(Object.keys(media.examples ?? {}).length > 0, `${name} ${status} ${type}: an example`);
      }
    }
    const body = operation.requestBody?.content ?? {};
    for (const [type, media] of Object.entries(body)) assert.ok(Object.keys(media.examples ?? {}).length > 0, `${name} body ${type}: an example`);
  }
});

/** The /v2 routes speak the Open Inference Protocol, whose errors are {"error": "…"}, not the service's body. */
const isOip = (name: string) => / \/v2(\/|$)/.test(name);

test('error responses list their codes as an enum, each of its status, with an example per code', async (t) => {
  const { doc } = await fetchDocument(t);
  for (const [name, operation] of operations(doc)) {
    if (isOip(name)) continue; // their own shape: the next test
    for (const [status, response] of Object.entries(operation.responses)) {
      if (Number(status) < 400) continue;
      const media = response.content?.['application/json'];
      const codes = (media?.schema as { properties?: { error?: { properties?: { code?: { enum?: string[] } } } } })?.properties?.error?.properties
        ?.code?.enum;
      assert.ok(codes && codes.length > 0, `${name} ${status}: codes as an enum`);
      for (const code of codes) {
        assert.equal(ERROR_CODES[code as ErrorCode]?.status, Number(status), `${name}: ${code} is a ${status}`);
        assert.equal((media!.examples?.[code]?.value as { error: { code: string } }).error.code, code, `${name} ${status}: example of ${code}`);
      }
    }
  }
  const predict = op(doc, '/predict', 'post');
  assert.deepEqual(Object.keys(predict.responses).sort(), ['200', '400', '401', '404', '413', '415', '429', '500', '503', '504']);
  assert.ok(op(doc, '/jobs/{id}/results', 'get').responses['409'], 'results: 409 not_ready');
  assert.ok(op(doc, '/jobs/{id}', 'get').responses['404'], 'status: 404 not_found');
});

test("the /v2 routes document their errors in the protocol's shape, and their examples follow open_inference_rest.yaml", async (t) => {
  const { doc } = await fetchDocument(t);
  const v2 = operations(doc).filter(([name]) => isOip(name));
  assert.equal(v2.length, 9, v2.map(([name]) => name).join(', '));
  for (const [name, operation] of v2) {
    const errors = Object.entries(operation.responses).filter(([status]) => Number(status) >= 400);
    assert.ok(errors.length > 0, `${name}: its errors are documented`);
    for (const [status, response] of errors) {
      const media = response.content?.['application/json'];
      const schema = media?.schema as { type?: string; required?: string[]; properties?: Record<string, { type?: string }> } | undefined;
      assert.equal(schema?.type, 'object', `${name} ${status}: an object`);
      assert.deepEqual(schema.required, ['error'], `${name} ${status}: error is required`);
      assert.deepEqual(Object.keys(schema.properties ?? {}), ['error'], `${name} ${status}: only error`);
      assert.equal(schema.properties!.error!.type, 'string', `${name} ${status}: error is a string, not the service's object`);
      const examples = Object.values(media!.examples ?? {});
      assert.ok(examples.length > 0, `${name} ${status}: an example`);
      for (const example of examples) conforms(oip.inference_error_response.strict(), example.value);
    }
    if (operation.security?.length !== 0) assert.ok(operation.responses['401'], `${name}: keyed, so a 401`);
  }
  const infer = op(doc, '/v2/models/{model}/infer', 'post');
  for (const status of ['400', '401', '404', '429', '503', '504']) assert.ok(infer.responses[status], `infer: ${status}`);
  assert.deepEqual(op(doc, '/v2/health/live', 'get').security, [], 'liveness needs no key');
  assert.deepEqual(op(doc, '/v2/health/ready', 'get').security, [], 'readiness needs no key');

  const examples = (media: Media | undefined) => Object.values(media?.examples ?? {}).map((e) => e.value);
  const success = (path: string, method = 'get') => examples(op(doc, path, method).responses['200']!.content?.['application/json']);
  const checks: [string, string, z.ZodType][] = [
    ['/v2', 'get', oip.metadata_server_response],
    ['/v2/health/live', 'get', oip.live_server_response],
    ['/v2/health/ready', 'get', oip.ready_server_response],
    ['/v2/models/{model}', 'get', oip.metadata_model_response],
    ['/v2/models/{model}/versions/{version}', 'get', oip.metadata_model_response],
    ['/v2/models/{model}/ready', 'get', oip.ready_model_response],
    ['/v2/models/{model}/infer', 'post', oip.inference_response],
    ['/v2/models/{model}/versions/{version}/infer', 'post', oip.inference_response],
  ];
  for (const [path, method, schema] of checks) {
    const values = success(path, method);
    assert.ok(values.length > 0, `${method} ${path}: an example`);
    for (const value of values) conforms(schema, value);
  }
  const requests = examples(op(doc, '/v2/models/{model}/infer', 'post').requestBody?.content['application/json']);
  assert.ok(requests.length > 0, 'an inference request example');
  for (const value of requests) conforms(oip.inference_request, value);
});

test("POST /jobs takes JSON, NDJSON and CSV; results come as JSON, NDJSON and CSV; the contract's headers are documented", async (t) => {
  const { doc } = await fetchDocument(t);
  const submit = op(doc, '/jobs', 'post');
  assert.deepEqual(Object.keys(submit.requestBody!.content).sort(), ['application/json', 'application/x-ndjson', 'text/csv']);
  assert.deepEqual(Object.keys(op(doc, '/jobs/{id}/results', 'get').responses['200']!.content!).sort(), [
    'application/json',
    'application/x-ndjson',
    'text/csv',
  ]);
  assert.ok(submit.responses['202']!.headers?.['Location']);
  assert.ok(submit.responses['202']!.headers?.['Idempotent-Replayed']);
  assert.ok(op(doc, '/predict', 'post').responses['200']!.headers?.['Server-Timing']);
  assert.ok(op(doc, '/predict/batch', 'post').responses['200']!.headers?.['Server-Timing']);
  assert.ok(op(doc, '/predict', 'post').responses['429']!.headers?.['Retry-After']);
  assert.ok(op(doc, '/jobs', 'get').responses['503']!.headers?.['Retry-After']);
  const list = op(doc, '/jobs', 'get');
  assert.equal(list.operationId, 'listJobs');
  assert.deepEqual(op(doc, '/health', 'get').security, [], 'health needs no key');
});

test('X-Routing-Key is documented on every route a call naming no version takes, and only there', async (t) => {
  const { doc } = await fetchDocument(t);
  const routingKey = (path: string) => (op(doc, path, 'post').parameters ?? []).some((p) => p.in === 'header' && p.name === 'X-Routing-Key');
  for (const path of ['/predict', '/predict/batch', '/models/{name}/predict', '/models/{name}/predict/batch', '/v2/models/{model}/infer']) {
    assert.ok(routingKey(path), `${path} documents X-Routing-Key`);
  }
  for (const path of ['/models/{name}/versions/{version}/predict', '/v2/models/{model}/versions/{version}/infer']) {
    assert.ok(!routingKey(path), `${path} names its version: no routing key`);
  }
});

test('one component per schema: no `…Input` duplicates, none unused', async (t) => {
  const { doc, text } = await fetchDocument(t);
  const names = Object.keys(doc.components.schemas);
  assert.deepEqual(
    names.filter((n) => n.endsWith('Input')),
    [],
  );
  for (const name of ['PredictRequest', 'PredictResponse', 'BulkRecord', 'BulkJobRequest', 'JobStatus', 'JobList', 'JobResultsPage']) {
    assert.ok(names.includes(name), name);
  }
  for (const name of names) assert.ok(text.includes(`"#/components/schemas/${name}"`), `${name} is referred to`);
});

test("every example's decision agrees with its probability under the manifest's thresholds", async (t) => {
  const { doc } = await fetchDocument(t);
  const manifest = JSON.parse(await readFile(join(ROOT, 'models/fraud/1/manifest.json'), 'utf8')) as {
    version: string;
    thresholds: { approve: number; review: number };
  };
  const { approve, review } = manifest.thresholds;
  const expected = (p: number) => (p < approve ? 'approve' : p < review ? 'review' : 'decline');
  let seen = 0;
  const check = (value: unknown, where: string): void => {
    if (typeof value === 'string' && value.includes('fraud_probability')) {
      // NDJSON and CSV bodies: each line.
      for (const line of value.trim().split('\n')) {
        const csv = /^\d+,[^,]*,([0-9.e-]+),(\w+)$/.exec(line);
        if (csv) check({ fraud_probability: Number(csv[1]), decision: csv[2] }, where);
        else if (line.startsWith('{')) check(JSON.parse(line), where);
      }
    } else if (Array.isArray(value)) value.forEach((v, i) => check(v, `${where}.${i}`));
    else if (value && typeof value === 'object') {
      const v = value as { fraud_probability?: unknown; decision?: unknown; model_version?: unknown };
      if (typeof v.fraud_probability === 'number') {
        seen++;
        assert.equal(v.decision, expected(v.fraud_probability), `${where}: ${v.fraud_probability}`);
        assert.ok(v.fraud_probability > 0 && v.fraud_probability < 1, `${where}: a real probability`);
      }
      if (typeof v.model_version === 'string' && v.model_version.startsWith('fraud-')) assert.equal(v.model_version, manifest.version, where);
      for (const [k, child] of Object.entries(value)) check(child, `${where}.${k}`);
    }
  };
  check(doc.paths, 'paths');
  assert.ok(seen >= 12, `${seen} scored examples checked`);
  const predictExamples = op(doc, '/predict', 'post').responses['200']!.content!['application/json']!.examples!;
  assert.deepEqual(Object.keys(predictExamples).sort(), ['approve', 'decline', 'review']);
});

test('the committed examples are what scripts/openapi-examples.ts builds from the generator and the model', async () => {
  const built = examplesText(await buildOpenapiExamples());
  assert.equal(await readFile(EXAMPLES_FILE, 'utf8'), built, 'run npm run openapi:examples');
});

test('the documented POST /jobs bodies are accepted as they are', async (t) => {
  const { app, doc } = await fetchDocument(t);
  for (const [type, media] of Object.entries(op(doc, '/jobs', 'post').requestBody!.content)) {
    for (const [name, example] of Object.entries(media.examples!)) {
      const payload = typeof example.value === 'string' ? example.value : JSON.stringify(example.value);
      const res = await app.inject({ method: 'POST', url: '/jobs', headers: { 'content-type': type }, payload });
      assert.equal(res.statusCode, 202, `${type} ${name}: ${res.body}`);
    }
  }
});

test('/docs and /openapi.json are open without a key by default; DOCS_PUBLIC=false puts them behind it', async (t) => {
  const keys = { API_KEYS: 'key-one', ADMIN_API_KEYS: 'admin-key' };
  const open = await buildTestApp(t, keys);
  for (const url of ['/docs', '/docs/static/index.html', '/openapi.json', '/docs/json']) {
    const res = await open.app.inject({ method: 'GET', url });
    assert.ok(res.statusCode === 200 || res.statusCode === 302, `${url}: ${res.statusCode}`);
  }
  assert.equal((await open.app.inject({ method: 'GET', url: '/jobs' })).statusCode, 401, 'the api itself still needs a key');
  assert.equal((await open.app.inject({ method: 'GET', url: '/admin/queues' })).statusCode, 401, 'bull-board still needs a key');
  const board = await open.app.inject({ method: 'GET', url: '/admin/queues', headers: { authorization: 'Bearer admin-key' } });
  assert.equal(board.statusCode, 200, 'and opens with the admin key');

  const closed = await buildTestApp(t, { ...keys, DOCS_PUBLIC: 'false' });
  for (const url of ['/docs', '/openapi.json', '/docs/json']) {
    const res = await closed.app.inject({ method: 'GET', url });
    assert.equal(res.statusCode, 401, url);
    assert.equal(res.json().error.code, 'unauthorized');
  }
  const withKey = await closed.app.inject({ method: 'GET', url: '/openapi.json', headers: { authorization: 'Bearer key-one' } });
  assert.equal(withKey.statusCode, 200);
});

test('an error whose code an operation does not list is still answered as it is, never turned into a 500', async (t) => {
  const { default: Fastify } = await import('fastify');
  const { serializerCompiler, validatorCompiler } = await import('fastify-type-provider-zod');
  const { default: errorsPlugin } = await import('../../src/api/plugins/errors.ts');
  const { AppError } = await import('../../src/shared/errors.ts');
  const { errorResponses } = await import('../../src/shared/schemas/error.ts');
  const app = Fastify();
  t.after(() => app.close());
  app.setValidatorCompiler(validatorCompiler);
  app.setSerializerCompiler(serializerCompiler);
  await app.register(errorsPlugin);
  app.get('/thing', { schema: { response: errorResponses('not_found') } }, async () => {
    throw new AppError({ code: 'gone_elsewhere', statusCode: 404, message: 'moved' });
  });
  const res = await app.inject({ method: 'GET', url: '/thing' });
  assert.equal(res.statusCode, 404);
  assert.equal(res.json().error.code, 'gone_elsewhere');
});
