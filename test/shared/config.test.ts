import { test } from 'node:test';
import assert from 'node:assert/strict';
import { ConfigError, loadConfig } from '../../src/shared/config.ts';

test('an empty environment gives the documented defaults', () => {
  const config = loadConfig({});
  assert.equal(config.redis.url, 'redis://127.0.0.1:6379');
  assert.equal(config.api.port, 8080);
  assert.equal(config.worker.port, 9100);
  assert.equal(config.api.predictTimeoutMs, 2000);
  assert.equal(config.api.maxBatchRecords, 1000);
  assert.equal(config.api.maxJobRecords, 1_000_000);
  assert.equal(config.bulk.resultTtlSeconds, 86_400);
  assert.deepEqual(config.api.apiKeys, []);
  assert.equal(config.worker.maxBatchDelayMs, 0);
});

test('numbers are coerced and keys are split', () => {
  const config = loadConfig({ PORT: '9000', API_KEYS: ' a, b ,,c', REDIS_URL: 'rediss://:pw@host:6380/2' });
  assert.equal(config.api.port, 9000);
  assert.deepEqual(config.api.apiKeys, ['a', 'b', 'c']);
  assert.equal(config.redis.url, 'rediss://:pw@host:6380/2');
});

test('every bad variable is named in one error', () => {
  assert.throws(
    () => loadConfig({ PORT: 'eighty', REDIS_URL: 'http://x', PREDICT_TIMEOUT_MS: '-5' }),
    (err: unknown) => {
      assert.ok(err instanceof ConfigError);
      for (const name of ['PORT', 'REDIS_URL', 'PREDICT_TIMEOUT_MS']) assert.match(err.message, new RegExp(name));
      return true;
    },
  );
});

test('thresholds out of order are refused', () => {
  assert.throws(() => loadConfig({ APPROVE_THRESHOLD: '0.5', REVIEW_THRESHOLD: '0.2' }), /APPROVE_THRESHOLD/);
});

test('the config is frozen', () => {
  const config = loadConfig({});
  assert.throws(() => {
    (config.api as { port: number }).port = 1;
  });
});

test('a process started with a bad variable stops at once with a message naming it', async () => {
  const { spawnSync } = await import('node:child_process');
  const { serviceArgs } = await import('../../src/shared/node-args.ts');
  for (const role of ['api', 'worker'] as const) {
    const run = spawnSync(process.execPath, serviceArgs(role), {
      env: { ...process.env, PORT: 'eighty', WORKER_PORT: 'ninety' },
      encoding: 'utf8',
      timeout: 20_000,
    });
    assert.equal(run.status, 1, role);
    assert.match(run.stderr, role === 'api' ? /PORT/ : /WORKER_PORT/);
  }
});
