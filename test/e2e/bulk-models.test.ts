// Bulk jobs for any model, end to end: real api and worker processes over temporary model
// repositories, real onnxruntime sessions. The species model and bare hand-built graphs by bulk
// give what /models/{name}/predict/batch gives for the same records; a job is pinned to the
// version resolved at submission even when its alias moves mid-job; a job pinned to a version no
// live worker holds waits, says why, and completes once a worker holding it starts.
import { after, before, describe, test } from 'node:test';
import assert from 'node:assert/strict';
import { cp, readFile, rm, writeFile } from 'node:fs/promises';
import { join } from 'node:path';
import { parse as parseCsv } from 'csv-parse/sync';
import { startTestRedis, type TestRedis } from '../helpers/redis-server.ts';
import { startApi, startWorker, type ServiceProcess } from '../helpers/processes.ts';
import { postJson, request, type JsonResponse } from '../helpers/http.ts';
import { waitFor } from '../helpers/wait.ts';
import { allTypesGraph, buildOnnxGraph } from '../helpers/onnx-graphs.ts';
import { generateFraudRecords } from '../../scripts/model/fraud-data.ts';
import { tempRepository, writeVersion } from '../helpers/model-repository.ts';
import { QUEUES, shardQueueName } from '../../src/shared/queues.ts';

/** Small chunks, so every job here spans several and a pin is checked chunk by chunk. */
const CHUNK = '7';

let redis: TestRedis;
const started: ServiceProcess[] = [];
const roots: string[] = [];

before(async () => {
  redis = await startTestRedis();
});
after(async () => {
  await Promise.all(started.map((p) => p.stop('SIGKILL')));
  await redis.close();
  await Promise.all(roots.map((r) => rm(r, { recursive: true, force: true })));
});

async function repository(models: string[]): Promise<string> {
  const root = await tempRepository('bulk-models-e2e', models);
  roots.push(root);
  return root;
}

/** fraud/2: fraud/1's graph and encoding under another display version, so a reply tells them apart. */
async function addFraudCopy(root: string): Promise<{ v1: string; v2: string }> {
  // In place of the committed fraud/2 (XGBoost): a version holds one model file.
  await rm(join(root, 'fraud', '2'), { recursive: true, force: true });
  await cp(join(root, 'fraud', '1'), join(root, 'fraud', '2'), { recursive: true });
  const file = join(root, 'fraud', '2', 'manifest.json');
  const manifest = JSON.parse(await readFile(file, 'utf8')) as { version: string };
  const v1 = manifest.version;
  manifest.version = `${v1}-copy2`;
  await writeFile(file, JSON.stringify(manifest));
  return { v1, v2: manifest.version };
}

/** A graph whose inputs are all scalars (so CSV can carry them): each echoed, plus their numeric sum. */
function scalarGraph(): Uint8Array {
  const inputs = [
    { name: 'amount', type: 'float32', shape: ['N'] },
    { name: 'count', type: 'int64', shape: ['N', 1] },
    { name: 'flag', type: 'bool', shape: ['N'] },
    { name: 'word', type: 'string', shape: ['N'] },
  ] as const;
  return buildOnnxGraph({
    inputs: inputs.map((i) => ({ ...i, shape: [...i.shape] })),
    outputs: [
      ...inputs.map((i) => ({ name: `${i.name}_out`, type: i.type, shape: [...i.shape] })),
      { name: 'total', type: 'float32', shape: ['N', 1] },
    ],
    nodes: [
      ...inputs.map((i) => ({ op: 'Identity', inputs: [i.name], outputs: [`${i.name}_out`] })),
      { op: 'Unsqueeze', inputs: ['amount', 'axis1'], outputs: ['amount_2d'] },
      { op: 'Cast', inputs: ['count'], outputs: ['count_f'], attributes: { to: 1 } },
      { op: 'Add', inputs: ['amount_2d', 'count_f'], outputs: ['total'] },
    ],
    initializers: [{ name: 'axis1', type: 'int64', dims: [1], values: [1] }],
  });
}

type Stack = { api: ServiceProcess; workers: ServiceProcess[] };

async function stack(prefix: string, root: string, workerEnv: Record<string, string> = {}): Promise<Stack> {
  const env = { REDIS_URL: redis.url, QUEUE_PREFIX: prefix };
  const [api, worker] = await Promise.all([
    startApi({ ...env, BULK_CHUNK_SIZE: CHUNK }),
    startWorker({ ...env, MODEL_REPOSITORY: root, MODEL_POLL_SECONDS: '0', ...workerEnv }),
  ]);
  started.push(api, worker);
  return { api, workers: [worker] };
}

function submit(api: ServiceProcess, query: string, contentType: string, body: string): Promise<JsonResponse> {
  return request(`${api.url}/jobs${query}`, { method: 'POST', headers: { 'content-type': contentType }, body });
}

const ndjson = (records: readonly object[]) => records.map((r) => JSON.stringify(r)).join('\n') + '\n';

async function accepted(res: JsonResponse): Promise<string> {
  assert.equal(res.status, 202, JSON.stringify(res.body));
  return res.body.job_id as string;
}

async function completed(api: ServiceProcess, jobId: string, timeoutMs = 60_000): Promise<any> {
  return waitFor(
    async () => {
      const res = await request(`${api.url}/jobs/${jobId}`);
      assert.equal(res.status, 200, JSON.stringify(res.body));
      if (res.body.status === 'failed') throw new Error(`job ${jobId} failed: ${res.body.error}`);
      return res.body.status === 'completed' ? res.body : undefined;
    },
    { timeoutMs, what: `job ${jobId} completed` },
  );
}

async function results(api: ServiceProcess, jobId: string): Promise<Record<string, any>[]> {
  const all: Record<string, any>[] = [];
  let offset: number | null = 0;
  while (offset !== null) {
    const page = await request(`${api.url}/jobs/${jobId}/results?offset=${offset}&limit=5`);
    assert.equal(page.status, 200, JSON.stringify(page.body));
    all.push(...page.body.results);
    offset = page.body.next_offset;
  }
  return all;
}

/** What /models/{name}/predict/batch answers for these records (the ids taken out). */
async function batchOutputs(api: ServiceProcess, name: string, records: readonly Record<string, unknown>[]): Promise<Record<string, unknown>[]> {
  const res = await postJson(`${api.url}/models/${name}/predict/batch`, { records: records.map(({ id: _id, ...r }) => r) });
  assert.equal(res.status, 200, JSON.stringify(res.body));
  return res.body.results;
}

function speciesRecords(n: number) {
  // Spread over the three species' ranges, so the labels differ.
  return Array.from({ length: n }, (_, i) => ({
    measurements: [4.5 + (i % 7) * 0.5, 2.5 + (i % 3) * 0.4, 1 + (i % 6), 0.1 + (i % 5) * 0.5],
    ...(i % 4 === 0 ? {} : { id: `s-${i}` }),
  }));
}

describe('bulk jobs for any model', () => {
  let root: string;
  let s: Stack;
  let speciesVersion: string;

  before(async () => {
    root = await repository(['fraud', 'species']);
    await writeVersion(root, 'alltypes', 1, allTypesGraph());
    await writeVersion(root, 'scalars', 1, scalarGraph());
    s = await stack('e2e-bulk-models', root);
    speciesVersion = (JSON.parse(await readFile(join(root, 'species', '1', 'manifest.json'), 'utf8')) as { version: string }).version;
  });

  test('the species model by bulk, JSON and NDJSON: the same outputs as /models/species/predict/batch, and its status names the pinned version', async () => {
    const records = speciesRecords(30);
    const expected = await batchOutputs(s.api, 'species', records);
    assert.ok(new Set(expected.map((r) => r.label)).size > 1, 'the records span several species');
    for (const [type, body] of [
      ['application/json', JSON.stringify({ records })],
      ['application/x-ndjson', ndjson(records)],
    ] as const) {
      const jobId = await accepted(await submit(s.api, '?model=species', type, body));
      const status = await completed(s.api, jobId);
      assert.equal(status.model_name, 'species');
      assert.equal(status.model_version_number, 1);
      assert.equal(status.model_version, speciesVersion);
      assert.deepEqual(status.scored_by, { [speciesVersion]: records.length });
      const got = await results(s.api, jobId);
      assert.equal(got.length, records.length);
      got.forEach((r, i) => {
        const { index, id, ...outputs } = r;
        assert.equal(index, i);
        assert.equal(id, records[i]!.id);
        assert.deepEqual(outputs, expected[i], `${type} record ${i}`);
      });

      // CSV results: scalar outputs as values, the labelled probabilities as JSON text in a cell.
      const csv = await request(`${s.api.url}/jobs/${jobId}/results`, { headers: { accept: 'text/csv' } });
      assert.equal(csv.status, 200);
      const rows = parseCsv(csv.body as string, { columns: true }) as Record<string, string>[];
      assert.equal(rows.length, records.length);
      rows.forEach((row, i) => {
        assert.equal(row.index, String(i));
        assert.equal(row.id, records[i]!.id ?? '');
        assert.equal(row.label, expected[i]!.label);
        assert.deepEqual(JSON.parse(row.probabilities!), expected[i]!.probabilities);
      });
      const streamed = await request(`${s.api.url}/jobs/${jobId}/results`, { headers: { accept: 'application/x-ndjson' } });
      assert.deepEqual(
        (streamed.body as string)
          .trim()
          .split('\n')
          .map((l) => JSON.parse(l)),
        got,
      );
    }
  });

  test('a CSV body for a model with an array input is 400, saying why, and creates no job', async () => {
    const res = await submit(s.api, '?model=species', 'text/csv', 'measurements\n1\n');
    assert.equal(res.status, 400, JSON.stringify(res.body));
    assert.equal(res.body.error.code, 'validation_error');
    assert.match(res.body.error.message, /CSV takes only models whose inputs are all scalars; measurements \[N, 4\]/);
  });

  test('a bare hand-built graph of every input type by bulk, JSON and NDJSON, and one of scalars by CSV', async () => {
    const records = Array.from({ length: 16 }, (_, i) => ({
      f32: [i * 0.5, 1.5, -2],
      f64: i / 3,
      i64: i * 1000,
      i32: [-i, i],
      flag: i % 2 === 0,
      word: `wörd-${i}, "quoted"`,
      ...(i % 3 === 0 ? { id: `a-${i}` } : {}),
    }));
    const expected = await batchOutputs(s.api, 'alltypes', records);
    for (const [type, body] of [
      ['application/json', JSON.stringify({ records })],
      ['application/ndjson', ndjson(records)],
    ] as const) {
      const jobId = await accepted(await submit(s.api, '?model=alltypes&version=1', type, body));
      const status = await completed(s.api, jobId);
      assert.deepEqual(status.scored_by, { '1': records.length });
      const got = await results(s.api, jobId);
      assert.deepEqual(
        got.map(({ index: _i, id: _id, ...outputs }) => outputs),
        expected,
      );
      assert.deepEqual(
        got.map((r) => r.id),
        records.map((r) => r.id),
      );
    }

    const scalars = Array.from({ length: 10 }, (_, i) => ({ amount: i * 1.25, count: i * 3, flag: i % 3 === 0, word: `w${i}` }));
    const csvBody = `word,id,amount,count,flag\n${scalars.map((r, i) => `${r.word},c-${i},${r.amount},${r.count},${r.flag}`).join('\n')}\n`;
    const jobId = await accepted(await submit(s.api, '?model=scalars', 'text/csv', csvBody));
    await completed(s.api, jobId);
    const expectedScalars = await batchOutputs(s.api, 'scalars', scalars);
    const got = await results(s.api, jobId);
    assert.equal(got[3]!.total, 3 * 1.25 + 9);
    assert.deepEqual(
      got,
      expectedScalars.map((outputs, i) => ({ index: i, id: `c-${i}`, ...outputs })),
    );
  });

  test('bad records are 400 naming the line or index and the field; an unknown model or version is 404 model_not_found', async () => {
    const good = { f32: [1, 2, 3], f64: 1, i64: 1, i32: [1, 2], flag: true, word: 'w' };
    const lines = await submit(s.api, '?model=alltypes', 'application/x-ndjson', ndjson([good, { ...good, word: 3 }, good, { ...good, extra: 1 }]));
    assert.equal(lines.status, 400, JSON.stringify(lines.body));
    const paths = lines.body.error.details.map((d: { path: string }) => d.path);
    assert.ok(paths.includes('lines.2.word'), JSON.stringify(paths));
    assert.ok(paths.includes('lines.4.extra'), JSON.stringify(paths));

    const json = await submit(s.api, '?model=alltypes', 'application/json', JSON.stringify({ records: [good, { ...good, i32: [1] }] }));
    assert.equal(json.status, 400);
    assert.ok(
      json.body.error.details.some((d: { path: string }) => d.path === 'records.1.i32'),
      JSON.stringify(json.body),
    );

    const csv = await submit(s.api, '?model=scalars', 'text/csv', 'amount,count,flag,word\n1,2,true,a\n1,x,true,b\n');
    assert.equal(csv.status, 400);
    assert.ok(
      csv.body.error.details.some((d: { path: string }) => d.path === 'lines.3.count'),
      JSON.stringify(csv.body),
    );

    for (const query of ['?model=nope', '?model=species&version=9', '?model=species&alias=nope']) {
      const res = await submit(s.api, query, 'application/x-ndjson', ndjson([{ measurements: [1, 2, 3, 4] }]));
      assert.equal(res.status, 404, `${query}: ${JSON.stringify(res.body)}`);
      assert.equal(res.body.error.code, 'model_not_found');
    }
  });
});

describe('a bulk job is pinned to the version resolved at submission', () => {
  test('submitted with champion → 1, the alias moved to 2 mid-job (SIGHUP): every record is scored by 1', async () => {
    const root = await repository(['fraud']);
    const { v1, v2 } = await addFraudCopy(root);
    await writeFile(join(root, 'fraud', 'aliases.json'), JSON.stringify({ champion: '1' }));
    const { api, workers } = await stack('e2e-bulk-pin', root);
    const worker = workers[0]!;
    await waitFor(
      async () => (await request(`${api.url}/models/fraud`)).body.versions?.filter((v: { state: string }) => v.state === 'loaded').length === 2,
      {
        timeoutMs: 20_000,
        what: 'fraud 1 and 2 loaded',
      },
    );

    // Frozen, the worker scores nothing; it stays live to the api for a heartbeat window (15 s).
    worker.proc.kill('SIGSTOP');
    try {
      const records = generateFraudRecords(11, 700);
      const jobId = await accepted(await submit(api, '?model=fraud&alias=champion', 'application/x-ndjson', ndjson(records)));
      const queued = await request(`${api.url}/jobs/${jobId}`);
      assert.equal(queued.body.model_version_number, 1);
      assert.equal(queued.body.model_version, v1);
      assert.equal(queued.body.progress.done, 0, 'the frozen worker scored nothing');

      await writeFile(join(root, 'fraud', 'aliases.json'), JSON.stringify({ champion: '2' }));
      // Delivered on resume: the worker re-reads the repository while it scores the job.
      worker.proc.kill('SIGHUP');
      worker.proc.kill('SIGCONT');

      const status = await completed(api, jobId);
      assert.equal(status.model_name, 'fraud');
      assert.equal(status.model_version_number, 1);
      assert.equal(status.model_version, v1);
      assert.deepEqual(status.scored_by, { [v1]: records.length }, 'every record scored by version 1');
      assert.equal((await results(api, jobId)).length, records.length);

      // The alias did move: a call naming no version now gets 2.
      const now = await waitFor(
        async () => {
          const res = await postJson(`${api.url}/predict`, records[0]);
          return res.body.model_version === v2 ? res : undefined;
        },
        { timeoutMs: 20_000, what: 'champion serving 2' },
      );
      assert.equal(now.status, 200);
    } finally {
      worker.proc.kill('SIGCONT');
    }
  });

  test('a job pinned to a version no live worker holds waits and says why; a worker holding it scores it', async () => {
    const root = await repository(['fraud']);
    const { v2 } = await addFraudCopy(root);
    const { api } = await stack('e2e-bulk-wait', root, { MODELS: 'fraud:1' });
    await waitFor(async () => (await request(`${api.url}/models/fraud`)).body.versions?.some((v: { version: number }) => v.version === 2), {
      timeoutMs: 20_000,
      what: 'fraud 2 known on disk',
    });

    const records = generateFraudRecords(12, 40);
    const jobId = await accepted(await submit(api, '?model=fraud&version=2', 'application/json', JSON.stringify({ records })));
    // Long enough for the fraud:1 worker to take (and hand back) every chunk more than once.
    const waiting = await waitFor(
      async () => {
        const res = await request(`${api.url}/jobs/${jobId}`);
        return res.body.waiting_for ? res.body : undefined;
      },
      { timeoutMs: 10_000, what: 'the job says why it waits' },
    );
    assert.equal(waiting.waiting_for, 'model fraud version 2 is held by no live worker');
    assert.equal(waiting.model_version_number, 2);
    assert.equal(waiting.progress.done, 0);
    // The fraud:1 worker has taken chunks and handed them back (BullMQ's delayed set), unscored.
    await waitFor(async () => (await redis.client.zcard(`e2e-bulk-wait:${shardQueueName(QUEUES.bulk.name, 0, 1)}:delayed`)) > 0, {
      timeoutMs: 10_000,
      what: 'chunks handed back by the worker without version 2',
    });
    const still = await request(`${api.url}/jobs/${jobId}`);
    assert.equal(still.body.progress.done, 0, 'not scored by the version the worker holds');
    assert.deepEqual(still.body.scored_by, {});

    const holder = await startWorker({
      REDIS_URL: redis.url,
      QUEUE_PREFIX: 'e2e-bulk-wait',
      MODEL_REPOSITORY: root,
      MODEL_POLL_SECONDS: '0',
      MODELS: 'fraud:2',
    });
    started.push(holder);
    const status = await completed(api, jobId);
    assert.equal(status.waiting_for, undefined);
    assert.deepEqual(status.scored_by, { [v2]: records.length });
    assert.equal(status.model_version, v2);
  });
});
