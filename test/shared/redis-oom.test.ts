// isRedisOutOfMemory against the errors a real Redis at maxmemory (noeviction) sends: a plain
// write, a write in a MULTI (EXECABORT with previousErrors), and a Lua script that writes.
import { test, before, after } from 'node:test';
import assert from 'node:assert/strict';
import { startTestRedis, type TestRedis } from '../helpers/redis-server.ts';
import { isRedisOutOfMemory, readRedisMemory } from '../../src/shared/redis.ts';

let redis: TestRedis;

before(async () => {
  redis = await startTestRedis();
  await redis.client.config('SET', 'maxmemory-policy', 'noeviction');
  await redis.client.config('SET', 'maxmemory', '1');
});

after(async () => {
  await redis?.close();
});

async function thrown(work: () => Promise<unknown>): Promise<unknown> {
  try {
    await work();
  } catch (err) {
    return err;
  }
  throw new Error('Redis took the write');
}

test('every shape of OOM refusal is recognised, and nothing else is', async () => {
  const { client } = redis;
  assert.ok(isRedisOutOfMemory(await thrown(() => client.set('a', 'b'))));
  assert.ok(isRedisOutOfMemory(await thrown(() => client.multi().set('a', 'b').incr('c').exec())));
  assert.ok(isRedisOutOfMemory(await thrown(() => client.eval("return redis.call('SET', KEYS[1], 'x')", 1, 'k'))));
  assert.equal(isRedisOutOfMemory(await thrown(() => client.call('NOSUCHCOMMAND'))), false);
  assert.equal(isRedisOutOfMemory(new Error('OOM in a message of ours')), false);
  assert.equal((await readRedisMemory(client)).full, true);
  // Reads and deletes still work on a full Redis: the api can clean up after a refusal.
  assert.equal(await client.get('a'), null);
  assert.equal(await client.del('a'), 0);
});
