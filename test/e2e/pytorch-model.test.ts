// A PyTorch model through its own ONNX export (torch.onnx.export, as Triton documents for PyTorch
// on CPU), served from a model repository by real processes: a small MLP over the species
// measurements, scored through /models/{name}/predict/batch, must give torch's own forward pass
// within 1e-5. Set-up installs Debian's python3-torch when missing (scripts/ensure-python-ml.sh);
// without apt-get or root the test is skipped, saying why.
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
import { postJson } from '../helpers/http.ts';
import { PYTHON, pythonMlSkipReason } from '../helpers/python-ml.ts';

const run = promisify(execFile);
const EXPORT = fileURLToPath(new URL('../fixtures/pytorch/export_mlp.py', import.meta.url));

const skip = await pythonMlSkipReason();

describe('a PyTorch model exported with torch.onnx.export', { skip, timeout: 120_000 }, () => {
  let redis: TestRedis;
  let exported: string;
  let root: string;
  let api: ServiceProcess;
  let worker: ServiceProcess;

  before(async () => {
    exported = await mkdtemp(join(tmpdir(), 'torch-export-'));
    await run(PYTHON, [EXPORT, exported], { timeout: 120_000 });
    root = await mkdtemp(join(tmpdir(), 'torch-repo-'));
    await mkdir(join(root, 'mlp', '1'), { recursive: true });
    await copyFile(join(exported, 'model.onnx'), join(root, 'mlp', '1', 'model.onnx'));
    redis = await startTestRedis();
    const env = { REDIS_URL: redis.url, QUEUE_PREFIX: 'torch', MODEL_REPOSITORY: root };
    [api, worker] = await Promise.all([startApi(env), startWorker(env)]);
  });
  after(async () => {
    await Promise.all([api, worker].filter(Boolean).map((p) => p.stop()));
    await redis?.close();
    await Promise.all([root, exported].filter(Boolean).map((d) => rm(d, { recursive: true, force: true })));
  });

  test("the service's probabilities are torch's forward pass, within 1e-5", async () => {
    const expected = JSON.parse(await readFile(join(exported, 'expected.json'), 'utf8')) as { rows: number[][]; probabilities: number[][] };
    const res = await postJson(`${api.url}/models/mlp/predict/batch`, { records: expected.rows.map((measurements) => ({ measurements })) });
    assert.equal(res.status, 200, JSON.stringify(res.body));
    assert.equal(res.body.results.length, expected.rows.length);
    res.body.results.forEach((r: { probabilities: number[] }, i: number) => {
      expected.probabilities[i]!.forEach((p, k) => {
        const got = r.probabilities[k]!;
        assert.ok(Math.abs(got - p) <= 1e-5 * Math.max(Math.abs(p), 1e-3), `row ${i} class ${k}: ${got} against torch's ${p}`);
      });
    });
  });
});
