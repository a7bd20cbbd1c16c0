// The README's Quick start call and bulk flow, run as written against real processes: the only
// change is the api's port (8080 → the test's). A sample output in a `# {...}` comment must be
// exactly what the service prints.
import { test, before, after } from 'node:test';
import assert from 'node:assert/strict';
import { execFile } from 'node:child_process';
import { mkdtempSync, readFileSync, rmSync, symlinkSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { dirname, join } from 'node:path';
import { promisify } from 'node:util';
import { fileURLToPath } from 'node:url';
import { startTestRedis, type TestRedis } from '../helpers/redis-server.ts';
import { startApi, startWorker, type ServiceProcess } from '../helpers/processes.ts';

const ROOT = fileURLToPath(new URL('../..', import.meta.url));
const README = readFileSync(join(ROOT, 'README.md'), 'utf8');
const run = promisify(execFile);

/** The README's sh blocks, in order. */
const SH_BLOCKS = [...README.matchAll(/```sh\n([\s\S]*?)```/g)].map((m) => m[1]!);

function block(containing: string): string {
  const found = SH_BLOCKS.find((b) => b.includes(containing));
  assert.ok(found, `the README has a sh block with ${containing}`);
  return found;
}

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

/** Runs a README block in bash, failing on the first failing command, with `node` and `npx scoring` at hand. */
async function runBlock(script: string): Promise<string> {
  const adapted = script
    .replaceAll('localhost:8080', `localhost:${api.port}`)
    // npx finds the bin from the repository; here the scratch folder is the working directory.
    .replaceAll('npx scoring', `node ${join(ROOT, 'src/cli/main.ts')}`);
  const { stdout } = await run('bash', ['-euo', 'pipefail', '-c', adapted], {
    cwd: dir,
    env: { ...process.env, PATH: `${dirname(process.execPath)}:${process.env.PATH ?? ''}`, SCORING_URL: api.url },
    maxBuffer: 64 * 1024 * 1024,
  });
  return stdout;
}

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
