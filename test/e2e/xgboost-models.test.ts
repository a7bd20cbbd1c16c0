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
    expected = JSON.parse(await readFile(join(cases, 'binary', 'expected.json'), 'utf8'));
    redis = await startTestRedis();
    const env = { REDIS_URL: redis.url, QUEUE_PREFIX: 'xgb', MODEL_REPOSITORY: root };
    [api, worker] = await Promise.all([startApi(env), startWorker(env)]);
  });
  after(async () => {
    await Promise.all([api, worker].filter(Boolean).map((p) => p.stop()));
    await redis?.close();
    await Promise.all([root, cases].filter(Boolean).map((d) => rm(d, { recursive: true, force: true })));
  });

  /** The rows without a missing value: JSON records carry numbers, not NaN. */
  const complete = () =>
    expected.rows
      .map((row, i) => ({ row: row as number[], want: expected.predict[i]! }))
      .filter(({ row }) => row.every((v) => v !== null))
      .slice(0, 100);

  test('a booster as saved scores through /models/{name}/predict/batch as XGBoost does', async () => {
    const rows = complete();
    const res = await postJson(`${api.url}/models/boost/predict/batch`, { records: rows.map(({ row }) => ({ input__0: row })) });
    assert.equal(res.status, 200, JSON.stringify(res.body));
    assert.equal(res.body.model_version, '1');
    res.body.results.forEach((r: { probability: number }, i: number) => {
      assert.ok(Math.abs(r.probability - rows[i]!.want) <= 1e-5, `row ${i}: ${r.probability} against ${rows[i]!.want}`);
    });
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
