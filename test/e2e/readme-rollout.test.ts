// The README's "Rolling out a new version", run as written, step by step, in a scratch folder
// holding a copy of the model repository (the walk-through edits models/fraud/*.json): canary,
// shadow, promote, roll back, each checked by what the service then does.
import { after, before, test } from 'node:test';
import assert from 'node:assert/strict';
import { cp, mkdtemp, rm, symlink } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { fileURLToPath } from 'node:url';
import { startTestRedis, type TestRedis } from '../helpers/redis-server.ts';
import { startApi, startWorker, type ServiceProcess } from '../helpers/processes.ts';
import { postJson, request } from '../helpers/http.ts';
import { block, runBlock } from '../helpers/readme-blocks.ts';
import { waitFor } from '../helpers/wait.ts';

const ROOT = fileURLToPath(new URL('../..', import.meta.url));
const RECORD = { transaction_amount: 120.5, merchant_category: 'grocery', card_present: true, hour_of_day: 14, days_since_last_transaction: 2 };

let redis: TestRedis;
let api: ServiceProcess;
let worker: ServiceProcess;
let dir: string;
const display: Record<number, string> = {};

before(async () => {
  dir = await mkdtemp(join(tmpdir(), 'scoring-rollout-'));
  await cp(join(ROOT, 'models'), join(dir, 'models'), { recursive: true });
  await symlink(join(ROOT, 'examples'), join(dir, 'examples'));
  redis = await startTestRedis();
  const env = { REDIS_URL: redis.url, QUEUE_PREFIX: 'rollout', MODEL_REPOSITORY: join(dir, 'models'), MODEL_POLL_SECONDS: '1' };
  [api, worker] = await Promise.all([startApi(env), startWorker(env)]);
  const model = await waitFor(
    async () => {
      const m = (await request(`${api.url}/models/fraud`)).body;
      return m.versions?.filter((v: { state: string }) => v.state === 'loaded').length === 2 ? m : undefined;
    },
    { timeoutMs: 60_000, what: 'fraud versions 1 and 2 loaded' },
  );
  for (const v of model.versions) display[v.version] = v.display_version;
});

after(async () => {
  await Promise.all([api?.stop(), worker?.stop()]);
  await redis?.close();
  await rm(dir, { recursive: true, force: true });
});

const run = (containing: string) => runBlock(block(containing), dir, api.url);
const fraud = async () => (await request(`${api.url}/models/fraud`)).body;
/** Waits until the workers report `what` of fraud (they reload every poll). */
const until = (probe: (model: Record<string, any>) => boolean, what: string) =>
  waitFor(async () => probe(await fraud()) || undefined, { timeoutMs: 15_000, what });

test('1. canary: scoring models shows it, and about 10% of callers get version 2', async () => {
  const listed = await run('"canary"');
  await until((m) => m.routing.canary?.version === 2, 'the canary in GET /models/fraud');
  // The block's own `scoring models` may have run before the reload: ask again.
  const again = await runBlock('npx scoring models', dir, api.url);
  const line = again
    .trim()
    .split('\n')
    .map((l) => JSON.parse(l))
    .find((m) => m.name === 'fraud');
  assert.deepEqual(line.routing, { canary: { version: 2, percent: 10 } });
  assert.ok(listed.includes('"name":"fraud"'));
  const versions = await Promise.all(
    Array.from({ length: 400 }, async (_, i) => (await postJson(`${api.url}/predict`, RECORD, { 'x-routing-key': `c${i}` })).body.model_version),
  );
  const share = versions.filter((v) => v === display[2]).length / versions.length;
  assert.ok(share > 0.05 && share < 0.15, `canary share ${share}`);
});

test('2. shadow: every answer comes from version 1, and scoring models compare fraud counts the records', async () => {
  await run('"shadow"');
  await until((m) => m.routing.shadow?.version === 2 && m.routing.canary === undefined, 'the shadow in GET /models/fraud');
  // The block's calls may have come before the reload; these come after it.
  const answered = await postJson(`${api.url}/predict/batch`, { records: Array.from({ length: 20 }, () => RECORD) });
  assert.equal(answered.body.model_version, display[1]);
  const summary = await waitFor(
    async () => {
      const out = JSON.parse(await runBlock('npx scoring models compare fraud', dir, api.url));
      return out.pairs.find((p: { shadow_version: number }) => p.shadow_version === 2)?.compared >= 20 ? out : undefined;
    },
    { timeoutMs: 30_000, what: 'the shadow comparison' },
  );
  assert.equal(summary.model_name, 'fraud');
  assert.ok(summary.pairs[0].agreement >= 0 && summary.pairs[0].agreement <= 1);
});

test('3. promote: champion moves to version 2 and the routing ends', async () => {
  await run('"champion": 2');
  await until((m) => m.aliases.champion === 2 && Object.keys(m.routing).length === 0, 'champion 2, no routing');
  assert.equal((await postJson(`${api.url}/predict`, RECORD)).body.model_version, display[2]);
});

test('4. roll back: champion moves back to version 1', async () => {
  await run('"champion": 1');
  await until((m) => m.aliases.champion === 1, 'champion 1');
  assert.equal((await postJson(`${api.url}/predict`, RECORD)).body.model_version, display[1]);
});
