// The `scoring` CLI against real api and worker processes on a private Redis: a 200,000-record
// CSV submitted with --wait --out, a wait interrupted with Ctrl-C that leaves the job running,
// resumed downloads, the service's errors printed as they are, and the documented exit codes.
import { test, before, after } from 'node:test';
import assert from 'node:assert/strict';
import { spawn } from 'node:child_process';
import { mkdtempSync, readFileSync, rmSync, statSync, truncateSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { dirname, join } from 'node:path';
import { fileURLToPath } from 'node:url';
import { promisify, stripVTControlCharacters } from 'node:util';
import { execFile } from 'node:child_process';
import { startTestRedis, type TestRedis } from '../helpers/redis-server.ts';
import { startApi, startWorker, type ServiceProcess } from '../helpers/processes.ts';
import { freePort } from '../helpers/ports.ts';
import { waitFor } from '../helpers/wait.ts';
import { fraudRecordsToCsv, generateFraudRecords } from '../../scripts/model/fraud-data.ts';
import { ScoringClient } from '../../src/client/index.ts';

const ROOT = fileURLToPath(new URL('../..', import.meta.url));
const pkg = JSON.parse(readFileSync(join(ROOT, 'package.json'), 'utf8')) as { bin: Record<string, string> };
const BIN = join(ROOT, pkg.bin.scoring!);
const KEY = 'cli-test-key-0123456789';
const RECORDS = 200_000;
const CSV_HEADER = 'index,id,fraud_probability,decision';

let redis: TestRedis;
let api: ServiceProcess;
let worker: ServiceProcess | undefined;
let dir: string;
let bigCsv: string;
let client: ScoringClient;

type Run = { code: number | null; signal: NodeJS.Signals | null; stdout: string; stderr: string };

/** Runs the package's `scoring` bin as a user would, with the service's URL and key in its environment. */
function cli(args: string[], env: Record<string, string> = {}) {
  const child = spawn(process.execPath, [BIN, ...args], {
    cwd: dir,
    env: { ...process.env, SCORING_URL: api.url, SCORING_API_KEY: KEY, ...env },
    stdio: ['ignore', 'pipe', 'pipe'],
  });
  let stdout = '';
  let stderr = '';
  child.stdout.on('data', (d: Buffer) => (stdout += d.toString()));
  child.stderr.on('data', (d: Buffer) => (stderr += d.toString()));
  const done = new Promise<Run>((resolve) => child.once('close', (code, signal) => resolve({ code, signal, stdout, stderr })));
  return { child, done, stderr: () => stderr };
}

const run = (args: string[], env?: Record<string, string>) => cli(args, env).done;

function resultLines(path: string): string[] {
  const lines = readFileSync(path, 'utf8').split('\n');
  assert.equal(lines.pop(), '', 'the file ends with a newline');
  assert.equal(lines.shift(), CSV_HEADER);
  return lines;
}

/** Every result is at its index, and agrees with the online path for a sample of records. */
async function assertResultsOf(path: string, records: ReturnType<typeof generateFraudRecords>) {
  const lines = resultLines(path);
  assert.equal(lines.length, records.length);
  for (let i = 0; i < lines.length; i += 997) assert.equal(Number(lines[i]!.split(',')[0]), i);
  const sample = [0, 1, 2, records.length - 1];
  const online = await client.predictBatch(sample.map((i) => records[i]!));
  sample.forEach((i, k) => {
    const [, , probability, decision] = lines[i]!.split(',');
    assert.ok(Math.abs(Number(probability) - online.results[k]!.fraud_probability) < 1e-6, `result ${i}`);
    assert.equal(decision, online.results[k]!.decision);
  });
}

const records = generateFraudRecords(2026, RECORDS);

before(async () => {
  dir = mkdtempSync(join(tmpdir(), 'scoring-cli-'));
  bigCsv = join(dir, 'records.csv');
  writeFileSync(bigCsv, fraudRecordsToCsv(records));
  redis = await startTestRedis();
  const env = { REDIS_URL: redis.url, QUEUE_PREFIX: 'cli-e2e', API_KEYS: KEY };
  api = await startApi(env);
  worker = await startWorker(env);
  client = new ScoringClient({ url: api.url, apiKey: KEY });
});

after(async () => {
  await Promise.all([api?.stop(), worker?.stop()]);
  await redis?.close();
  rmSync(dir, { recursive: true, force: true });
});

test('submit --wait --out: a 200,000-record CSV ends as 200,000 result lines, exit 0, progress as plain lines', async () => {
  const out = join(dir, 'results.csv');
  const r = await run(['submit', bigCsv, '--wait', '--out', out]);
  assert.equal(r.code, 0, r.stderr);
  await assertResultsOf(out, records);
  const final = JSON.parse(r.stdout) as { status: string; progress: { total: number; done: number } };
  assert.equal(final.status, 'completed');
  assert.deepEqual(final.progress, { total: RECORDS, done: RECORDS });
  // Not a terminal: no bar escape codes, plain progress lines of each phase.
  assert.equal(stripVTControlCharacters(r.stderr), r.stderr);
  assert.match(r.stderr, /^upload: .*MB \(100%\)/m);
  assert.match(r.stderr, /^scoring: 200000\/200000 records \(100%\)/m);
  assert.match(r.stderr, new RegExp(`wrote ${RECORDS} results of job \\S+ to ${out}`));
});

test('Ctrl-C while waiting leaves the job running; scoring results fetches it afterwards, continuing a partial file', async () => {
  // Without a worker the job stays queued, so the interrupt lands mid-wait for certain.
  await worker!.stop();
  worker = undefined;
  let jobId: string;
  try {
    const waiting = cli(['submit', bigCsv, '--wait', '--out', join(dir, 'never.csv')]);
    jobId = await waitFor(() => /job (\S+) accepted; waiting/.exec(waiting.stderr())?.[1], { timeoutMs: 60_000, what: 'the upload' });
    waiting.child.kill('SIGINT');
    const r = await waiting.done;
    assert.equal(r.code, 130, r.stderr);
    assert.match(r.stderr, new RegExp(`Job ${jobId} keeps running`));
    assert.match(r.stderr, new RegExp(`scoring results ${jobId} --out \\S+never\\.csv`));
    assert.equal((await client.jobStatus(jobId)).status, 'queued', 'the interrupt did not cancel the job');
  } finally {
    // Whatever happened above, the tests after this one need a worker.
    worker = await startWorker({ REDIS_URL: redis.url, QUEUE_PREFIX: 'cli-e2e', API_KEYS: KEY });
  }
  const out = join(dir, 'resumed.csv');
  const fetched = await run(['results', jobId, '--out', out]);
  assert.equal(fetched.code, 0, fetched.stderr);
  await assertResultsOf(out, records);

  // A download cut mid-line (a killed process) continues where it stopped, byte for byte.
  const whole = readFileSync(out);
  truncateSync(out, Math.floor(statSync(out).size * 0.6) + 3);
  const resumed = await run(['results', jobId, '--out', out]);
  assert.equal(resumed.code, 0, resumed.stderr);
  assert.match(resumed.stderr, /continued after \d+ already there/);
  assert.ok(readFileSync(out).equals(whole));

  // NDJSON to stdout is what the service streams.
  const ndjson = await run(['results', jobId, '--format', 'ndjson']);
  assert.equal(ndjson.code, 0, ndjson.stderr);
  const lines = ndjson.stdout.trimEnd().split('\n');
  assert.equal(lines.length, RECORDS);
  assert.equal((JSON.parse(lines.at(-1)!) as { index: number }).index, RECORDS - 1);
});

test('on a terminal: progress bars for the upload, the scoring and the download', async () => {
  const file = join(dir, 'tty.csv');
  writeFileSync(file, fraudRecordsToCsv(records.slice(0, 20_000)));
  const out = join(dir, 'tty-results.csv');
  const command = [process.execPath, BIN, 'submit', file, '--out', out].map((a) => `'${a}'`).join(' ');
  // util-linux `script` gives the CLI a pseudo-terminal, as a person's shell would.
  const { stdout } = await promisify(execFile)('script', ['-qec', command, '/dev/null'], {
    // Killed rather than left running past the test when the CLI never ends.
    timeout: 120_000,
    killSignal: 'SIGKILL',
    cwd: dir,
    env: { ...process.env, SCORING_URL: api.url, SCORING_API_KEY: KEY },
  });
  const screen = stripVTControlCharacters(stdout);
  assert.match(screen, /upload +\[[█░]+\] [\d.]+\/[\d.]+ MB/);
  assert.match(screen, /scoring +\[█+\] 20000\/20000 records \(100%\)/);
  assert.match(screen, /download +\[█+\] 20000\/20000 records \(100%\)/);
  assert.equal(resultLines(out).length, 20_000);
});

test('predict: a record as an argument and an NDJSON file, printed as JSON lines', async () => {
  const one = await run(['predict', JSON.stringify(records[0])]);
  assert.equal(one.code, 0, one.stderr);
  const expected = await client.predict(records[0]!);
  assert.deepEqual(JSON.parse(one.stdout), expected);

  const file = join(dir, 'few.ndjson');
  writeFileSync(
    file,
    records
      .slice(0, 1500)
      .map((r) => JSON.stringify(r))
      .join('\n') + '\n',
  );
  const many = await run(['predict', '--file', file]);
  assert.equal(many.code, 0, many.stderr);
  const lines = many.stdout
    .trimEnd()
    .split('\n')
    .map((l) => JSON.parse(l) as { fraud_probability: number; model_version: string });
  assert.equal(lines.length, 1500);
  assert.equal(lines[0]!.fraud_probability, expected.fraud_probability);
  assert.equal(lines[0]!.model_version, expected.model_version);
});

test("the service's error and the failing line are printed as they are, exit 1; status, cancel", async () => {
  const bad = join(dir, 'bad.ndjson');
  const lines = records.slice(0, 5).map((r) => JSON.stringify(r));
  lines[3] = JSON.stringify({ ...records[3], hour_of_day: 31 });
  writeFileSync(bad, lines.join('\n') + '\n');
  const r = await run(['submit', bad]);
  assert.equal(r.code, 1);
  assert.match(r.stderr, /^scoring: validation_error: /m);
  assert.match(r.stderr, /^ {2}lines\.4\.hour_of_day: .+$/m);
  assert.ok(r.stderr.includes(`  line 4: ${lines[3]}\n`), r.stderr);

  const unknown = await run(['status', 'no-such-job']);
  assert.equal(unknown.code, 1);
  assert.match(unknown.stderr, /^scoring: not_found: /m);

  const wrongKey = await run(['status', 'no-such-job'], { SCORING_API_KEY: 'wrong' });
  assert.equal(wrongKey.code, 1);
  assert.match(wrongKey.stderr, /^scoring: unauthorized: /m);

  const small = join(dir, 'small.ndjson');
  writeFileSync(
    small,
    records
      .slice(0, 10)
      .map((r) => JSON.stringify(r))
      .join('\n') + '\n',
  );
  const submitted = await run(['submit', small, '--url', api.url]);
  assert.equal(submitted.code, 0, submitted.stderr);
  const { job_id } = JSON.parse(submitted.stdout) as { job_id: string };
  const status = await run(['status', job_id]);
  assert.equal(status.code, 0, status.stderr);
  assert.equal((JSON.parse(status.stdout) as { job_id: string }).job_id, job_id);
  const cancelled = await run(['cancel', job_id]);
  assert.equal(cancelled.code, 0, cancelled.stderr);
  assert.match((JSON.parse(cancelled.stdout) as { status: string }).status, /^(cancelled|completed)$/);
});

test('exit codes: 2 for usage errors, 3 when nothing answers', async () => {
  assert.equal((await run(['predict', '{not json'])).code, 2);
  assert.equal((await run(['submit', join(dir, 'records.txt')])).code, 2);
  assert.equal((await run(['submit', join(dir, 'missing.csv')])).code, 2);
  assert.equal((await run(['no-such-command'])).code, 2);
  assert.equal((await run(['--help'])).code, 0);
  const nowhere = `http://127.0.0.1:${await freePort()}`;
  const r = await run(['status', 'x'], { SCORING_URL: nowhere });
  assert.equal(r.code, 3);
  assert.match(r.stderr, /does not answer at/);
  assert.equal((await run(['status', 'x'], { SCORING_URL: 'not a url' })).code, 2);
});

test('a wait rides out an api restart', async () => {
  await worker!.stop();
  worker = undefined;
  const small = join(dir, 'restart.ndjson');
  writeFileSync(
    small,
    records
      .slice(0, 100)
      .map((r) => JSON.stringify(r))
      .join('\n') + '\n',
  );
  const waiting = cli(['submit', small, '--wait']);
  await waitFor(() => /accepted; waiting/.test(waiting.stderr()), { timeoutMs: 30_000, what: 'the upload' });
  const env = { REDIS_URL: redis.url, QUEUE_PREFIX: 'cli-e2e', API_KEYS: KEY };
  await api.stop();
  await waitFor(() => /the service is away/.test(waiting.stderr()), { timeoutMs: 30_000, what: 'the CLI to notice' });
  api = await startApi({ ...env, PORT: String(api.port) });
  worker = await startWorker(env);
  const r = await waiting.done;
  assert.equal(r.code, 0, r.stderr);
  assert.equal((JSON.parse(r.stdout) as { status: string }).status, 'completed');
});

test('npx scoring runs the bin from the repository', async () => {
  // npx (whichever npm is installed) starts the bin with the `node` first on PATH: this one.
  const env = { ...process.env, PATH: `${dirname(process.execPath)}:${process.env.PATH ?? ''}` };
  const r = await new Promise<Run>((resolve) => {
    const child = spawn('npx', ['--no-install', 'scoring', '--help'], { cwd: ROOT, env, stdio: ['ignore', 'pipe', 'pipe'] });
    let stdout = '';
    let stderr = '';
    child.stdout.on('data', (d: Buffer) => (stdout += d.toString()));
    child.stderr.on('data', (d: Buffer) => (stderr += d.toString()));
    child.once('close', (code, signal) => resolve({ code, signal, stdout, stderr }));
  });
  assert.equal(r.code, 0, r.stderr);
  assert.match(r.stdout, /Exit codes: 0 ok/);
});
