// A real worker process over a repository with junk beside fraud: it starts and serves, logs the
// broken version by name and reason, picks up a new version on SIGHUP without a restart, and
// stops at once only when it can serve no model at all.
import { after, before, describe, test } from 'node:test';
import assert from 'node:assert/strict';
import { spawnSync } from 'node:child_process';
import { cp, mkdir, mkdtemp, rm, writeFile } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { startTestRedis, type TestRedis } from '../helpers/redis-server.ts';
import { startWorker, type ServiceProcess } from '../helpers/processes.ts';
import { waitFor } from '../helpers/wait.ts';
import { softmaxGraph } from '../helpers/onnx-graphs.ts';
import { serviceArgs } from '../../src/shared/node-args.ts';

const COMMITTED = new URL('../../models/', import.meta.url).pathname;

describe('worker over a model repository', () => {
  let redis: TestRedis;
  let root: string;
  let worker: ServiceProcess | undefined;

  before(async () => {
    redis = await startTestRedis();
    root = await mkdtemp(join(tmpdir(), 'worker-repo-'));
    await cp(join(COMMITTED, 'fraud'), join(root, 'fraud'), { recursive: true });
    await mkdir(join(root, 'broken', '1'), { recursive: true });
    await writeFile(join(root, 'broken', '1', 'model.onnx'), 'not onnx');
    await mkdir(join(root, 'extra', '1'), { recursive: true });
    await writeFile(join(root, 'extra', '1', 'model.onnx'), softmaxGraph([[1, 0]], [0, 0]));
    await writeFile(join(root, 'stray-file.txt'), 'junk');
  });
  after(async () => {
    await worker?.stop('SIGKILL');
    await redis.close();
    await rm(root, { recursive: true, force: true });
  });

  test('junk beside fraud does not stop the worker; the broken version is logged by name and reason', async () => {
    worker = await startWorker({
      REDIS_URL: redis.url,
      QUEUE_PREFIX: 'e2e-repo',
      MODEL_REPOSITORY: root,
      MODEL_POLL_SECONDS: '0',
      LOG_LEVEL: 'info',
    });
    const failure = worker
      .output()
      .split('\n')
      .filter((l) => l.includes('model version failed to load'))
      .map((l) => JSON.parse(l) as { model_name: string; model_version: number; reason: string });
    assert.equal(failure.length, 1, worker.output());
    assert.equal(failure[0]!.model_name, 'broken');
    assert.equal(failure[0]!.model_version, 1);
    assert.match(failure[0]!.reason, /broken\/1\/model\.onnx: is not a loadable ONNX model/);
  });

  test('SIGHUP loads a new version without a restart', async () => {
    await mkdir(join(root, 'extra', '2'), { recursive: true });
    await writeFile(join(root, 'extra', '2', 'model.onnx'), softmaxGraph([[0, 1]], [0, 0]));
    worker!.proc.kill('SIGHUP');
    await waitFor(
      () =>
        worker!
          .output()
          .split('\n')
          .some((l) => l.includes('model version loaded') && l.includes('"model_name":"extra","model_version":2')),
      { what: 'the worker to log version 2 of extra as loaded' },
    );
    assert.equal(worker!.proc.exitCode, null, 'SIGHUP does not stop the worker');
    const res = await fetch(`${worker!.url}/ready`);
    assert.equal(res.status, 200);
    assert.equal(await worker!.stop('SIGTERM'), 0);
  });

  test('a repository with nothing servable stops the worker at once, saying so', () => {
    const run = spawnSync(process.execPath, serviceArgs('worker'), {
      env: { ...process.env, REDIS_URL: redis.url, MODEL_REPOSITORY: join(root, 'extra'), MODELS: '', WORKER_PORT: '0' },
      encoding: 'utf8',
      timeout: 30_000,
    });
    assert.equal(run.status, 1, run.stdout + run.stderr);
    assert.match(run.stdout + run.stderr, /model could not be loaded/);
    assert.match(run.stdout + run.stderr, /the worker holds no model/);
  });
});
