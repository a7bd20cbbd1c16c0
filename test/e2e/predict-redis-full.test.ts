// A full Redis (maxmemory under noeviction, as BullMQ requires) on /predict (issue 23): the call's
// job cannot be written, and the caller hears 507 insufficient_storage with Retry-After, as POST
// /jobs answers it, not 503 "Redis does not answer": Redis answers, it has no room.
import { after, before, test } from 'node:test';
import assert from 'node:assert/strict';
import { startTestRedis, type TestRedis } from '../helpers/redis-server.ts';
import { startApi, startWorker, type ServiceProcess } from '../helpers/processes.ts';
import { postJson, request } from '../helpers/http.ts';
import { isContractError } from '../helpers/raw-http.ts';
import { generateFraudRecords } from '../../scripts/model/fraud-data.ts';

let redis: TestRedis;
let api: ServiceProcess;
let worker: ServiceProcess;
const [record] = generateFraudRecords(5, 1);

before(async () => {
  redis = await startTestRedis();
  await redis.client.config('SET', 'maxmemory-policy', 'noeviction');
  const env = { REDIS_URL: redis.url, QUEUE_PREFIX: 'predict-full' };
  [api, worker] = await Promise.all([startApi(env), startWorker(env)]);
});
after(async () => {
  await Promise.all([api?.stop(), worker?.stop()]);
  await redis?.close();
});

async function usedMemory(): Promise<number> {
  return Number(/used_memory:(\d+)/.exec(await redis.client.info('memory'))![1]);
}

test('a full Redis on /predict is 507 insufficient_storage with Retry-After', async () => {
  const first = await postJson(`${api.url}/predict`, record);
  assert.equal(first.status, 200, 'served while Redis has room');
  await redis.client.config('SET', 'maxmemory', String(Math.floor((await usedMemory()) / 2)));
  try {
    const res = await postJson(`${api.url}/predict`, record);
    assert.equal(res.status, 507, JSON.stringify(res.body));
    assert.equal(res.body.error.code, 'insufficient_storage');
    assert.ok(isContractError(res.body));
    assert.ok(Number(res.headers.get('retry-after')) > 0);
  } finally {
    await redis.client.config('SET', 'maxmemory', '0');
  }
  const again = await request(`${api.url}/predict`, {
    method: 'POST',
    headers: { 'content-type': 'application/json' },
    body: JSON.stringify(record),
  });
  assert.equal(again.status, 200, 'with room again, calls are served');
});
