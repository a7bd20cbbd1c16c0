// XGBoost boosters served from the model repository as saved, with real processes: a version
// holding xgboost.ubj scores like any other model (the graph converted at load time), and the
// same answers come through /models/{name}/predict/batch and the Open Inference Protocol. Beside
// it, a categorical booster and a gblinear one are refused: GET /models/{name} and the
// load-failure metric say why, and the good version keeps serving.
import { after, before, describe, test } from 'node:test';
import assert from 'node:assert/strict';
import { execFile } from 'node:child_process';
import { copyFile, mkdir, mkdtemp, readFile, rm } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { promisify } from 'node:util';
import { fileURLToPath } from 'node:url';
import { startTestRedis, type TestRedis } from '../helpers/redis-server.ts';
import { startApi, startWorker, type ServiceProcess } from '../helpers/processes.ts';
import { postJson, readMetric, request } from '../helpers/http.ts';
import { waitFor } from '../helpers/wait.ts';
import { PYTHON, pythonMlSkipReason } from '../helpers/python-ml.ts';

const run = promisify(execFile);
const TRAIN = fileURLToPath(new URL('../fixtures/xgboost/train.py', import.meta.url));

const skip = await pythonMlSkipReason();

describe('XGBoost versions in the model repository', { skip, timeout: 120_000 }, () => {
  let redis: TestRedis;
  let cases: string;
  let root: string;
  let api: ServiceProcess;
  let worker: ServiceProcess;
  let expected: { rows: (number | null)[][]; predict: number[] };
  let named: { rows: (number | null)[][]; predict: number[]; feature_names: string[] };

  before(async () => {
    cases = await mkdtemp(join(tmpdir(), 'xgboost-serve-'));
    await run(PYTHON, [TRAIN, cases], { timeout: 120_000 });
    root = await mkdtemp(join(tmpdir(), 'xgboost-repo-'));
    const put = async (version: number, from: string, file: string) => {
      await mkdir(join(root, 'boost', String(version)), { recursive: true });
      await copyFile(join(cases, from, file), join(root, 'boost', String(version), file));
    };
    await put(1, 'binary', 'xgboost.ubj');
    await put(2, 'categorical', 'xgboost.json');
    await put(3, 'gblinear', 'xgboost.json');
    await mkdir(join(root, 'named', '1'), { recursive: true });
    await copyFile(join(cases, 'named', 'xgboost.json'), join(root, 'named', '1', 'xgboost.json'));
    expected = JSON.parse(await readFile(join(cases, 'binary', 'expected.json'), 'utf8'));
    named = JSON.parse(await readFile(join(cases, 'named', 'expected.json'), 'utf8'));
    redis = await startTestRedis();
    const env = { REDIS_URL: redis.url, QUEUE_PREFIX: 'xgb', MODEL_REPOSITORY: root };
    [api, worker] = await Promise.all([startApi(env), startWorker(env)]);
  });
  after(async () => {
    await Promise.all([api, worker].filter(Boolean).map((p) => p.stop()));
    await redis?.close();
    await Promise.all([root, cases].filter(Boolean).map((d) => rm(d, { recursive: true, force: true })));
  });

  /** The rows without a missing value: a protocol tensor over JSON carries numbers, not NaN. */
  const complete = () =>
    expected.rows
      .map((row, i) => ({ row: row as number[], want: expected.predict[i]! }))
      .filter(({ row }) => row.every((v) => v !== null))
      .slice(0, 100);

  /**
   * A row as a record of the booster's fields: a missing value (XGBoost's NaN) as null in odd rows
   * and as an absent field in even ones, so both forms are scored as missing.
   */
  const record = (row: (number | null)[], fields: string[], r: number) => {
    const out: Record<string, number | null> = {};
    fields.forEach((f, c) => {
      if (row[c] !== null) out[f] = row[c]!;
      else if (r % 2) out[f] = null;
    });
    return out;
  };

  const assertScores = (results: { probability: number }[], want: number[]) =>
    results.forEach((r, i) => assert.ok(Math.abs(r.probability - want[i]!) <= 1e-5, `row ${i}: ${r.probability} against ${want[i]}`));

  test('a booster as saved scores records f0…f3, with null or absent as a missing value, as XGBoost does', async () => {
    const fields = ['f0', 'f1', 'f2', 'f3'];
    const res = await postJson(`${api.url}/models/boost/predict/batch`, { records: expected.rows.map((row, r) => record(row, fields, r)) });
    assert.equal(res.status, 200, JSON.stringify(res.body));
    assert.equal(res.body.model_version, '1');
    assert.equal(res.body.results.length, expected.rows.length);
    assertScores(res.body.results, expected.predict);
  });

  test('a booster with feature_names takes records by those names, in /models/{name}/predict/batch and a bulk job', async () => {
    const records = named.rows.map((row, r) => record(row, named.feature_names, r));
    assert.ok(
      records.some((r) => Object.keys(r).length === 0),
      'a record with every feature missing',
    );
    const res = await postJson(`${api.url}/models/named/predict/batch`, { records });
    assert.equal(res.status, 200, JSON.stringify(res.body));
    assertScores(res.body.results, named.predict);

    const job = await postJson(`${api.url}/jobs?model=named`, { records });
    assert.equal(job.status, 202, JSON.stringify(job.body));
    await waitFor(async () => ((await request(`${api.url}/jobs/${job.body.job_id}`)).body.status === 'completed' ? true : undefined), {
      what: 'the bulk job to complete',
    });
    const results = await request(`${api.url}/jobs/${job.body.job_id}/results?limit=1000`);
    assert.equal(results.status, 200, JSON.stringify(results.body));
    assertScores(results.body.results, named.predict);

    // CSV: an empty cell is a missing value.
    const csv = [named.feature_names.join(','), ...named.rows.map((row) => row.map((v) => (v === null ? '' : String(v))).join(','))].join('\n');
    const csvJob = await request(`${api.url}/jobs?model=named`, { method: 'POST', headers: { 'content-type': 'text/csv' }, body: csv });
    assert.equal(csvJob.status, 202, JSON.stringify(csvJob.body));
    await waitFor(async () => ((await request(`${api.url}/jobs/${csvJob.body.job_id}`)).body.status === 'completed' ? true : undefined), {
      what: 'the CSV job to complete',
    });
    assertScores((await request(`${api.url}/jobs/${csvJob.body.job_id}/results?limit=1000`)).body.results, named.predict);
  });

  test('a field that is not one of the names, or a string, is refused with the field named', async () => {
    const unknown = await postJson(`${api.url}/models/named/predict`, { amount: 1, f0: 2 });
    assert.equal(unknown.status, 400, JSON.stringify(unknown.body));
    assert.match(JSON.stringify(unknown.body), /f0/);
    const text = await postJson(`${api.url}/models/named/predict`, { amount: 'many' });
    assert.equal(text.status, 400, JSON.stringify(text.body));
    assert.match(JSON.stringify(text.body), /amount/);
  });

  test('and over the Open Inference Protocol, as Triton FIL clients send it (input__0, FP32 [N, F])', async () => {
    const rows = complete().slice(0, 10);
    const res = await postJson(`${api.url}/v2/models/boost/infer`, {
      inputs: [{ name: 'input__0', datatype: 'FP32', shape: [rows.length, 4], data: rows.flatMap(({ row }) => row) }],
    });
    assert.equal(res.status, 200, JSON.stringify(res.body));
    const output = res.body.outputs.find((o: { name: string }) => o.name === 'probability');
    assert.deepEqual(output.shape, [rows.length]);
    output.data.forEach((p: number, i: number) => assert.ok(Math.abs(p - rows[i]!.want) <= 1e-5, `row ${i}`));
  });

  test('a categorical and a gblinear booster are refused with the reason, in GET /models/{name} and the load-failure metric', async () => {
    const model = await waitFor(
      async () => {
        const res = await request(`${api.url}/models/boost`);
        return res.status === 200 && res.body.versions?.length === 3 ? res.body : undefined;
      },
      { what: 'three versions of boost' },
    );
    const byVersion = new Map(model.versions.map((v: { version: number }) => [v.version, v]));
    assert.equal((byVersion.get(1) as { state: string }).state, 'loaded');
    const reason = (v: number) => JSON.stringify(byVersion.get(v));
    assert.match(reason(2), /failed/);
    assert.match(reason(2), /categorical/);
    assert.match(reason(3), /failed/);
    assert.match(reason(3), /gblinear/);
    assert.equal(await readMetric(worker.url, 'scoring_model_load_failures', { model_name: 'boost' }), 2);
  });
});
