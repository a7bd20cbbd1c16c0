// startWorker(config) is the worker without its process (issue 23), as buildApp is the api: a test
// starts one in-process on a real Redis, sees it ready and registered, and stops it with close().
import { test } from 'node:test';
import assert from 'node:assert/strict';
import { startTestRedis } from '../helpers/redis-server.ts';
import { freePort } from '../helpers/ports.ts';
import { waitFor } from '../helpers/wait.ts';
import { loadConfig } from '../../src/shared/config.ts';
import { createLogger } from '../../src/shared/logger.ts';
import { startTelemetry } from '../../src/shared/telemetry.ts';
import { readLiveWorkers } from '../../src/shared/worker-registry.ts';
import { WorkerStartError, startWorker } from '../../src/worker/worker.ts';

test('a worker started in-process serves /ready, registers, and close() removes it and frees its port', async (t) => {
  const redis = await startTestRedis();
  t.after(() => redis.close());
  const port = await freePort();
  const config = loadConfig({
    REDIS_URL: redis.url,
    QUEUE_PREFIX: 'in-process',
    WORKER_PORT: String(port),
    MODELS: 'fraud',
    LOG_LEVEL: 'silent',
    OTEL_SDK_DISABLED: 'true',
  });
  const telemetry = startTelemetry({ serviceName: 'scoring-worker-test', ...config.telemetry });
  const worker = await startWorker(config, { telemetry, logger: createLogger('worker', 'silent') });
  let closed = false;
  t.after(() => (closed ? undefined : worker.close()));

  await waitFor(async () => (await fetch(`http://127.0.0.1:${port}/ready`).catch(() => undefined))?.status === 200, {
    what: 'the worker to be ready',
  });
  const live = await readLiveWorkers(redis.client, config.redis.prefix);
  assert.deepEqual(
    live.map((w) => w.id),
    [worker.id],
  );
  const ready = (await (await fetch(`http://127.0.0.1:${port}/ready`)).json()) as { model_version?: string };
  assert.match(JSON.stringify(ready), /fraud-gbdt-1\.0\.0/, "/ready names the default model's version");

  await worker.close();
  closed = true;
  assert.equal(worker.close instanceof Function, true);
  await worker.close(); // idempotent
  assert.deepEqual(await readLiveWorkers(redis.client, config.redis.prefix), []);
  await assert.rejects(fetch(`http://127.0.0.1:${port}/health`), 'the ops port is closed');
});

test('a worker that can load no model does not start, and says why', async (t) => {
  const redis = await startTestRedis();
  t.after(() => redis.close());
  const config = loadConfig({
    REDIS_URL: redis.url,
    QUEUE_PREFIX: 'in-process-empty',
    WORKER_PORT: String(await freePort()),
    MODEL_REPOSITORY: '/nonexistent-model-repository',
    LOG_LEVEL: 'silent',
    OTEL_SDK_DISABLED: 'true',
  });
  const telemetry = startTelemetry({ serviceName: 'scoring-worker-test', ...config.telemetry });
  await assert.rejects(startWorker(config, { telemetry, logger: createLogger('worker', 'silent') }), WorkerStartError);
});
