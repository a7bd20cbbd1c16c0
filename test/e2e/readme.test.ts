// The README's Quick start call and bulk flow, run as written against real processes: the only
// change is the api's port (8080 → the test's). A sample output in a `# {...}` comment must be
// exactly what the service prints.
import { test, before, after } from 'node:test';
import assert from 'node:assert/strict';
import { mkdtempSync, readFileSync, rmSync, symlinkSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { fileURLToPath } from 'node:url';
import { startTestRedis, type TestRedis } from '../helpers/redis-server.ts';
import { startApi, startWorker, type ServiceProcess } from '../helpers/processes.ts';
import { block, runBlock as runReadmeBlock } from '../helpers/readme-blocks.ts';

const ROOT = fileURLToPath(new URL('../..', import.meta.url));

let redis: TestRedis;
let api: ServiceProcess;
let worker: ServiceProcess;
let dir: string;

before(async () => {
  redis = await startTestRedis();
  const env = { REDIS_URL: redis.url, QUEUE_PREFIX: 'readme' };
  [api, worker] = await Promise.all([startApi(env), startWorker(env)]);
  // The flow's relative paths (examples/, results.csv) resolve in a scratch folder.
  dir = mkdtempSync(join(tmpdir(), 'scoring-readme-'));
  symlinkSync(join(ROOT, 'examples'), join(dir, 'examples'));
});

after(async () => {
  await Promise.all([api?.stop(), worker?.stop()]);
  await redis?.close();
  rmSync(dir, { recursive: true, force: true });
});

const runBlock = (script: string) => runReadmeBlock(script, dir, api.url);

test('Quick start: the /predict call prints exactly the output the README shows', async () => {
  const script = block('/predict');
  const shown = /^# (\{.*\})$/m.exec(script)?.[1];
  assert.ok(shown, 'the block shows its output');
  const printed = await runBlock(script.replace(/^#.*$/gm, ''));
  assert.equal(printed.trim(), shown);
});

test('Bulk jobs: the curl flow and the CLI line run as written', async () => {
  const curlFlow = await runBlock(block('ID=$(curl'));
  const lines = curlFlow.trim().split('\n');
  const status = JSON.parse(lines[0]!) as { status: string; progress: { total: number; done: number } };
  assert.equal(status.status, 'completed');
  const page = JSON.parse(lines[1]!) as { results: { index: number; id: string }[] };
  assert.equal(page.results[0]!.id, 'tx-1');
  const csv = readFileSync(join(dir, 'results.csv'), 'utf8').trimEnd().split('\n');
  assert.equal(csv.length, status.progress.total + 1);

  rmSync(join(dir, 'results.csv'));
  await runBlock(block('scoring submit'));
  const fromCli = readFileSync(join(dir, 'results.csv'), 'utf8').trimEnd().split('\n');
  assert.equal(fromCli.length, status.progress.total + 1);
});
