// `npm run bench` (issue 5): starts a private Redis, the api and workers as real processes and
// the in-process baseline, drives them with autocannon from this process, prints a table and
// writes bench/results/latest.json plus a dated copy. `--quick` is the one-minute version.
// Everything shares this machine's cores, the load generator included: compare the ratios one
// run measures, not absolute figures across runs. `--cluster` adds a step: /predict at c=64
// against a local Redis Cluster of three shards beside the single Redis, in the same run.
import { existsSync, mkdirSync, rmSync, writeFileSync } from 'node:fs';
import { cpus, loadavg, release, totalmem } from 'node:os';
import { join } from 'node:path';
import { parseArgs } from 'node:util';
import { startTestRedis, type TestRedis } from '../test/helpers/redis-server.ts';
import { loadConfig } from '../src/shared/config.ts';
import { generateFraudRecords } from '../scripts/model/fraud-data.ts';
import type { FraudRecord } from '../src/shared/schemas/record.ts';
import { ROOT, StartError, killAll, startServer, type ServerProcess } from './processes.ts';
import { median, runLoad, round, type LoadResult } from './load.ts';
import { decodeInferResponse, runGrpcLoad } from './grpc-load.ts';
import { startGrpcFront, type FrontKind } from './grpc-front.ts';
import { freePort } from '../test/helpers/ports.ts';
import { fraudGrpcInputs, fraudRestInputs } from '../test/helpers/fraud-tensors.ts';
import { meterCpu, sampleRss } from './process-stats.ts';
import { diffCommandStats, readCommandStats, startMonitorCensus, type CommandDelta } from './redis-stats.ts';
import { averageBatch, readBaselineBatches, readWorkerBatches, type BatchCounters } from './batch-stats.ts';
import { buildNdjson, runBulk, type BulkOutcome } from './bulk.ts';
import { measureBreakdown, type LatencyBreakdown } from './breakdown.ts';
import { newestProfile, profileClockUs, summarizeProfile, type ProfileSummary } from './profile.ts';
import { printReport } from './report.ts';
import { startBenchCluster, type BenchCluster } from './cluster.ts';
import type { CommandStats } from './redis-stats.ts';
import { evaluateTargets } from './targets.ts';
import { FULL_MIXED, QUICK_MIXED, measureMixed, printMixed, type MixedResult } from './mixed.ts';
import { FULL_SHADOW, QUICK_SHADOW, measureShadow, printShadow, type ShadowResult } from './shadow.ts';
import { measureIdleRss, printIdleRss } from './idle-rss.ts';

const { values: flags } = parseArgs({
  options: {
    quick: { type: 'boolean', default: false },
    'no-bulk': { type: 'boolean', default: false },
    'no-mixed': { type: 'boolean', default: false },
    'no-shadow': { type: 'boolean', default: false },
    'no-profile': { type: 'boolean', default: false },
    'no-telemetry-compare': { type: 'boolean', default: false },
    cluster: { type: 'boolean', default: false },
    'bulk-records': { type: 'string' },
    'log-level': { type: 'string', default: 'warn' },
    help: { type: 'boolean', default: false },
  },
});

if (flags.help) {
  console.log(
    'npm run bench [-- --quick] [--cluster] [--no-bulk] [--no-mixed] [--no-shadow] [--no-profile] [--no-telemetry-compare] [--bulk-records N] [--log-level L]',
  );
  process.exit(0);
}

const PLAN = flags.quick
  ? { name: 'quick', stepS: 3, warmupS: 1, scaling: [1, 2], bulkRecords: 100_000, telemetryRounds: 1, breakdownRequests: 300, protocolRounds: 1 }
  : {
      name: 'full',
      stepS: 12,
      warmupS: 2,
      scaling: [1, 2, 4],
      bulkRecords: 1_000_000,
      telemetryRounds: 2,
      breakdownRequests: 2000,
      protocolRounds: 3,
    };
const CONCURRENCIES = [1, 16, 64, 256];
const BULK_RECORDS = flags['bulk-records'] ? Number(flags['bulk-records']) : PLAN.bulkRecords;
/** Concurrency of the /predict/batch steps: enough to keep a worker busy without queueing 1000-record bodies deep. */
const BATCH_CONCURRENCY = 8;
const BATCH_SIZES = [100, 1000];
/** The concurrency the targets, the Redis count, scaling, telemetry and the profile are measured at. */
const REFERENCE_CONCURRENCY = 64;
/** Concurrencies of the Open Inference Protocol rows (REST and gRPC ModelInfer), run beside /predict's. */
const OIP_CONCURRENCIES = [1, 64];
/** Concurrencies of the second model's online row. */
const SECOND_MODEL_CONCURRENCIES = [1, 64];
const ONLINE_WORKERS = 1;
/** One worker per core: during a bulk job the api is mostly idle once the body is parsed. */
const BULK_WORKERS = 2;
const CENSUS_S = 2;
/** Records of the bulk job run under the profiler: enough for the shares, short enough not to matter. */
const PROFILE_BULK_RECORDS = 200_000;
/** Masters of the --cluster step's local Redis Cluster, and the online and bulk queue shards on it. */
const CLUSTER_SHARDS = 3;
/** Rounds of the --cluster step: single Redis and cluster alternate, each round in the other order. */
const CLUSTER_ROUNDS = 2;
const RESULTS_DIR = join(ROOT, 'bench/results');
const PROFILE_DIR = join(RESULTS_DIR, 'profiles');

/**
 * queue: fraud's /predict; species: the second model's online route, /models/species/predict (the
 * generic path); xgboost: fraud version 2 (the XGBoost booster) by version, the same records as queue.
 */
type Target = 'queue' | 'baseline' | 'species' | 'xgboost' | 'oip-rest' | 'oip-grpc';

type OnlineRow = {
  target: Target;
  concurrency: number;
  rps: number;
  p50_ms: number;
  p90_ms: number;
  p99_ms: number;
  max_ms: number;
  /** Non-2xx responses plus connection errors and timeouts. */
  errors: number;
  avg_batch: number | null;
  /** 2xx responses counted in the step. */
  requests: number;
  status_codes: Record<string, number>;
  redis_commands_per_request?: number;
  /** Share of a core each process used during the step (loadgen is this process). */
  cpu_cores: Record<string, number>;
  /** CPU time the serving processes (Redis included, the load generator not) spent per 2xx response. */
  cpu_ms_per_request: number | null;
};

type BatchRow = OnlineRow & { records_per_request: number; records_per_s: number };

/** api + workers on one queue prefix. */
type Stack = { name: string; env: Record<string, string>; api: ServerProcess; workers: ServerProcess[] };

/** `run` drives a subject autocannon cannot (gRPC); the bodies are then unused. */
type Subject = {
  target: Target;
  url: string;
  stack?: Stack;
  baseline?: ServerProcess;
  /** The Redis the stack runs on, when it is not the bench's single Redis: its command counters and node pids. */
  redis?: { commandStats: () => Promise<CommandStats>; pids: Record<string, number> };
  run?: (concurrency: number, durationS: number) => Promise<LoadResult>;
};

type Step = { row: OnlineRow; commands: CommandDelta; windowUs: { startUs: number; endUs: number } };

let redis: TestRedis | undefined;
let redisPid = 0;
let benchCluster: BenchCluster | undefined;
const stacks: Stack[] = [];

function log(message: string): void {
  process.stderr.write(`[bench ${new Date().toISOString().slice(11, 19)}] ${message}\n`);
}

function serviceEnv(prefix: string, extra: Record<string, string> = {}): Record<string, string> {
  return { REDIS_URL: redis!.url, QUEUE_PREFIX: prefix, LOG_LEVEL: flags['log-level'], HOST: '127.0.0.1', ...extra };
}

async function startStack(name: string, workers: number, extra: Record<string, string> = {}, nodeArgs?: (role: string) => string[]): Promise<Stack> {
  const env = serviceEnv(`bench-${name}`, extra);
  const [api, ...started] = await Promise.all([
    startServer('api', { name: `${name}-api`, env, nodeArgs: nodeArgs?.('api') }),
    ...Array.from({ length: workers }, (_, i) =>
      startServer('worker', { name: `${name}-worker${i + 1}`, env, nodeArgs: nodeArgs?.(`worker${i + 1}`) }),
    ),
  ]);
  const stack = { name, env, api: api!, workers: started };
  stacks.push(stack);
  return stack;
}

async function scaleWorkers(stack: Stack, count: number): Promise<void> {
  while (stack.workers.length > count) await stack.workers.pop()!.stop();
  const first = stack.workers.length;
  const more = await Promise.all(
    Array.from({ length: count - first }, (_, i) => startServer('worker', { name: `${stack.name}-worker${first + i + 1}`, env: stack.env })),
  );
  stack.workers.push(...more);
}

async function stopStack(stack: Stack): Promise<void> {
  await Promise.all([stack.api, ...stack.workers].map((p) => p.stop()));
  stacks.splice(stacks.indexOf(stack), 1);
}

function assertAlive(processes: ServerProcess[]): void {
  for (const p of processes) {
    if (!p.alive()) throw new StartError(`${p.name} exited during the run:\n${p.output()}`);
  }
}

/** One request through a path before any load, so a broken path fails here with its answer. */
async function checkPath(url: string, body: string, what: string): Promise<void> {
  const res = await fetch(url, { method: 'POST', headers: { 'content-type': 'application/json' }, body });
  if (res.status !== 200) throw new StartError(`${what} answered ${res.status} to a valid record: ${await res.text()}`);
}

/** Warm-up, then one measured load step with the batch, Redis and CPU counters read around it. */
async function measureStep(subject: Subject, concurrency: number, bodies: string[], durationS = PLAN.stepS): Promise<Step> {
  const { stack, baseline } = subject;
  const processes = stack ? [stack.api, ...stack.workers] : [baseline!];
  assertAlive(processes);
  const drive = (durationS: number) =>
    subject.run ? subject.run(concurrency, durationS) : runLoad({ url: subject.url, concurrency, durationS, bodies });
  await drive(PLAN.warmupS);

  const readBatches = (): Promise<BatchCounters> => (stack ? readWorkerBatches(stack.workers.map((w) => w.url)) : readBaselineBatches(baseline!.url));
  const batchesBefore = await readBatches();
  const readCommands = subject.redis?.commandStats ?? (() => readCommandStats(redis!.client));
  const commandsBefore = await readCommands();
  const pids: Record<string, number> = { loadgen: 0, ...(subject.redis?.pids ?? { redis: redisPid }) };
  for (const p of processes) pids[stack ? p.name.slice(stack.name.length + 1) : p.name] = p.pid;
  const cpu = meterCpu(pids);
  const startUs = profileClockUs();

  const load = await drive(durationS);

  const endUs = profileClockUs();
  const cpuCores = cpu.stop();
  const commands = diffCommandStats(commandsBefore, await readCommands());
  const batchesAfter = await readBatches();
  assertAlive(processes);
  const row: OnlineRow = {
    target: subject.target,
    concurrency,
    rps: load.rps,
    p50_ms: load.p50_ms,
    p90_ms: load.p90_ms,
    p99_ms: load.p99_ms,
    max_ms: load.max_ms,
    errors: load.errors,
    avg_batch: averageBatch(batchesBefore, batchesAfter),
    requests: load.ok,
    status_codes: load.status_codes,
    ...(stack && load.ok > 0 ? { redis_commands_per_request: round(commands.total / load.ok, 2) } : {}),
    cpu_cores: cpuCores,
    cpu_ms_per_request: servingCpuMs(cpuCores, load.rps),
  };
  log(
    `${subject.url.split('/').slice(3).join('/')} ${row.target} c=${concurrency}: ${row.rps} req/s, p50 ${row.p50_ms} ms, ` +
      `p99 ${row.p99_ms} ms, errors ${row.errors}, avg_batch ${row.avg_batch ?? '-'}`,
  );
  return { row, commands, windowUs: { startUs, endUs } };
}

function servingCpuMs(cores: Record<string, number>, rps: number): number | null {
  const serving = Object.entries(cores).reduce((sum, [name, c]) => (name === 'loadgen' ? sum : sum + c), 0);
  return rps > 0 ? round((serving * 1000) / rps, 3) : null;
}

/** Flower measurements (cm) around the three species' means, varied so batches are not one record repeated. */
function generateSpeciesRecords(n: number): { measurements: number[] }[] {
  const means = [
    [5.0, 3.4, 1.5, 0.2],
    [5.9, 2.8, 4.3, 1.3],
    [6.6, 3.0, 5.6, 2.0],
  ];
  return Array.from({ length: n }, (_, i) => ({
    measurements: means[i % 3]!.map((m, j) => Number((m + (((i * 7 + j * 13) % 11) - 5) * 0.04).toFixed(2))),
  }));
}

/** The api's CPU per answered call, in µs (its share of a core over the step, per request). */
function apiCpuUs(row: OnlineRow): number {
  return round(((row.cpu_cores.api ?? 0) * 1e6) / Math.max(1, row.rps), 1);
}

/**
 * Per round, each protocol's req/s over /predict's in the same round, and the api's CPU per call
 * of each (gRPC's own cost: issue 21 judges ModelInfer by it, at most 1.3x /predict's); and their medians.
 */
function protocolRatios(rounds: OnlineRow[][]) {
  const row = (rows: OnlineRow[], target: Target) => rows.find((r) => r.target === target)!;
  const ratios = (target: Target) => rounds.map((rows) => round(row(rows, target).rps / Math.max(1, row(rows, 'queue').rps), 3));
  const cpu = (target: Target) => rounds.map((rows) => apiCpuUs(row(rows, target)));
  const cpuRatios = rounds.map((rows) => round(apiCpuUs(row(rows, 'oip-grpc')) / Math.max(0.1, apiCpuUs(row(rows, 'queue'))), 3));
  const rest = ratios('oip-rest');
  const grpc = ratios('oip-grpc');
  return {
    concurrency: REFERENCE_CONCURRENCY,
    rounds: rounds.map((rows) => Object.fromEntries(rows.map((r) => [r.target, r.rps]))),
    rest_ratios: rest,
    grpc_ratios: grpc,
    median_rest_ratio: round(median(rest), 3),
    median_grpc_ratio: round(median(grpc), 3),
    api_cpu_us_per_call: { queue: cpu('queue'), 'oip-rest': cpu('oip-rest'), 'oip-grpc': cpu('oip-grpc') },
    grpc_api_cpu_ratios: cpuRatios,
    median_grpc_api_cpu_ratio: round(median(cpuRatios), 3),
  };
}

/** Records per call of the tensor batch rows. */
const TENSOR_BATCH = 100;

type TensorBatchTarget = 'predict-batch' | 'oip-rest' | 'oip-grpc';
type TensorBatchStep = { target: TensorBatchTarget; records_per_s: number; p99_ms: number; errors: number; api_cpu_us_per_record: number };

/**
 * /predict/batch, REST infer and gRPC ModelInfer with the same 100-record calls (tensors [100] on the
 * protocols), at BATCH_CONCURRENCY, in interleaved rounds: records/s and the api's CPU per record,
 * and per round ModelInfer's records/s over /predict/batch's (issue 21: at least 1.0x).
 */
async function measureTensorBatches(stack: Stack, grpcPort: number, batchBodies: string[]) {
  const batches = batchBodies.map((b) => (JSON.parse(b) as { records: FraudRecord[] }).records);
  const restBodies = batches.map((records) => JSON.stringify({ inputs: fraudRestInputs(records) }));
  const grpcRequests = batches.map((records) => ({ model_name: 'fraud', inputs: fraudGrpcInputs(records) }));
  const subjects: Record<TensorBatchTarget, { subject: Subject; bodies: string[] }> = {
    'predict-batch': { subject: { target: 'queue', url: `${stack.api.url}/predict/batch`, stack }, bodies: batchBodies },
    'oip-rest': { subject: { target: 'oip-rest', url: `${stack.api.url}/v2/models/fraud/infer`, stack }, bodies: restBodies },
    'oip-grpc': {
      subject: {
        target: 'oip-grpc',
        url: `grpc://127.0.0.1:${grpcPort}/inference.GRPCInferenceService/ModelInfer`,
        stack,
        run: (concurrency, durationS) => runGrpcLoad({ address: `127.0.0.1:${grpcPort}`, concurrency, durationS, requests: grpcRequests }),
      },
      bodies: [],
    },
  };
  await checkPath(subjects['oip-rest'].subject.url, restBodies[0]!, 'the api (POST /v2/models/fraud/infer, 100 records)');
  const rounds: TensorBatchStep[][] = [];
  const targets = Object.keys(subjects) as TensorBatchTarget[];
  for (let i = 0; i < PLAN.protocolRounds; i++) {
    const steps: TensorBatchStep[] = [];
    for (const target of i % 2 === 0 ? targets : [...targets].reverse()) {
      const { row } = await measureStep(subjects[target].subject, BATCH_CONCURRENCY, subjects[target].bodies);
      const recordsPerS = row.rps * TENSOR_BATCH;
      steps.push({
        target,
        records_per_s: Math.round(recordsPerS),
        p99_ms: row.p99_ms,
        errors: row.errors,
        api_cpu_us_per_record: round(((row.cpu_cores.api ?? 0) * 1e6) / Math.max(1, recordsPerS), 2),
      });
    }
    rounds.push(steps);
  }
  const of = (steps: TensorBatchStep[], target: TensorBatchTarget) => steps.find((s) => s.target === target)!;
  const medianOf = (target: TensorBatchTarget, key: 'records_per_s' | 'api_cpu_us_per_record') => median(rounds.map((r) => of(r, target)[key]));
  const grpcRatios = rounds.map((r) => round(of(r, 'oip-grpc').records_per_s / Math.max(1, of(r, 'predict-batch').records_per_s), 3));
  return {
    records_per_call: TENSOR_BATCH,
    concurrency: BATCH_CONCURRENCY,
    rounds,
    medians: Object.fromEntries(
      targets.map((t) => [
        t,
        { records_per_s: Math.round(medianOf(t, 'records_per_s')), api_cpu_us_per_record: round(medianOf(t, 'api_cpu_us_per_record'), 2) },
      ]),
    ),
    grpc_ratios: grpcRatios,
    median_grpc_ratio: round(median(grpcRatios), 3),
    errors: rounds.flat().reduce((n, s) => n + s.errors, 0),
  };
}

type FrontRow = { front: FrontKind; rps: number; p99_ms: number; errors: number; front_cores: number; cpu_us_per_call: number };

/**
 * The gRPC front alone (grpc-front.ts) at the reference concurrency, each in its own process,
 * beside the api CPU that one /predict call costs in the reference step: how much of the
 * oip-grpc row's gap the transport itself makes.
 */
async function measureGrpcFronts(requests: object[], predict: OnlineRow | undefined) {
  const rows: FrontRow[] = [];
  for (const kind of ['echo', 'protocol'] as const) {
    const front = await startGrpcFront(kind);
    try {
      const drive = (durationS: number) => runGrpcLoad({ address: front.address, concurrency: REFERENCE_CONCURRENCY, durationS, requests });
      await drive(PLAN.warmupS);
      const cpu = meterCpu({ front: front.pid, loadgen: 0 });
      const load = await drive(PLAN.stepS);
      const cores = cpu.stop();
      rows.push({
        front: kind,
        rps: load.rps,
        p99_ms: load.p99_ms,
        errors: load.errors,
        front_cores: cores.front!,
        cpu_us_per_call: round((cores.front! * 1e6) / Math.max(1, load.rps), 1),
      });
    } finally {
      await front.stop();
    }
  }
  const apiCores = predict?.cpu_cores.api;
  return {
    concurrency: REFERENCE_CONCURRENCY,
    predict_api_cpu_us_per_call: predict && apiCores !== undefined ? round((apiCores * 1e6) / Math.max(1, predict.rps), 1) : null,
    rows,
  };
}

function mean(values: number[]): number {
  return values.reduce((s, v) => s + v, 0) / Math.max(1, values.length);
}

async function main(): Promise<void> {
  const startedAt = new Date();
  if (!existsSync(join(ROOT, 'models/fraud/1/manifest.json'))) {
    throw new StartError('models/fraud/1/manifest.json is missing: build the model first (npm run model:build)');
  }
  log(`${PLAN.name} run: ${PLAN.stepS} s per step after ${PLAN.warmupS} s of warm-up; bulk job of ${BULK_RECORDS} records`);

  redis = await startTestRedis();
  const serverInfo = await redis.client.info('server');
  redisPid = Number(/process_id:(\d+)/.exec(serverInfo)?.[1] ?? 0);
  const redisVersion = /redis_version:(\S+)/.exec(serverInfo)?.[1] ?? 'unknown';

  const singleBodies = generateFraudRecords(7, 64).map((r) => JSON.stringify(r));
  const batchBodies = new Map(
    BATCH_SIZES.map((n) => [n, [1, 2, 3, 4].map((seed) => JSON.stringify({ records: generateFraudRecords(100 + seed * n, n) }))]),
  );

  // Before any load: the api's resident memory at idle (issue 21).
  const idleRss = await measureIdleRss(redis, log);

  log('starting the api, a worker and the baseline');
  const grpcPort = await freePort();
  const main = await startStack('main', ONLINE_WORKERS, { GRPC_PORT: String(grpcPort) });
  const baseline = await startServer('baseline', { env: serviceEnv('bench-baseline') });
  const effective = loadConfig({ ...process.env, ...main.env });
  await checkPath(`${main.api.url}/predict`, singleBodies[0]!, 'the api (POST /predict)');
  await checkPath(`${baseline.url}/predict`, singleBodies[0]!, 'the baseline (POST /predict)');
  const queue: Subject = { target: 'queue', url: `${main.api.url}/predict`, stack: main };
  const plain: Subject = { target: 'baseline', url: `${baseline.url}/predict`, baseline };

  // The same records over the Open Inference Protocol, each call one record as /predict's.
  const oipRecords = generateFraudRecords(7, 64);
  const oipRest: Subject = { target: 'oip-rest', url: `${main.api.url}/v2/models/fraud/infer`, stack: main };
  const restBodies = oipRecords.map((r) => JSON.stringify({ inputs: fraudRestInputs([r]) }));
  await checkPath(oipRest.url, restBodies[0]!, 'the api (POST /v2/models/fraud/infer)');
  const grpcRequests = oipRecords.map((r) => ({ model_name: 'fraud', inputs: fraudGrpcInputs([r]) }));
  const oipGrpc: Subject = {
    target: 'oip-grpc',
    url: `grpc://127.0.0.1:${grpcPort}/inference.GRPCInferenceService/ModelInfer`,
    stack: main,
    run: (concurrency, durationS) => runGrpcLoad({ address: `127.0.0.1:${grpcPort}`, concurrency, durationS, requests: grpcRequests }),
  };
  const grpcCheck = await runGrpcLoad({ address: `127.0.0.1:${grpcPort}`, concurrency: 1, durationS: 0.2, requests: grpcRequests });
  const checked = grpcCheck.lastResponse && (decodeInferResponse(grpcCheck.lastResponse) as { outputs?: { name: string }[] });
  if (!checked || checked.outputs?.[0]?.name !== 'fraud_probability') {
    throw new StartError(`the api's gRPC ModelInfer answered ${JSON.stringify(grpcCheck.status_codes)}: ${JSON.stringify(checked)}`);
  }

  // Online: the two targets alternate at each concurrency, so the pair a ratio compares ran
  // back to back under the same background load.
  const online: OnlineRow[] = [];
  let reference: Step | undefined;
  for (const c of CONCURRENCIES) {
    for (const subject of [queue, plain, ...(OIP_CONCURRENCIES.includes(c) ? [oipRest, oipGrpc] : [])]) {
      const step = await measureStep(subject, c, subject === oipRest ? restBodies : singleBodies);
      online.push(step.row);
      if (subject.target === 'queue' && c === REFERENCE_CONCURRENCY) reference = step;
    }
  }

  // The protocols' targets are ratios to /predict at the reference concurrency: more rounds of
  // the three back to back (the first is the table's), judged on the median ratio.
  const protocolRounds = [online.filter((r) => r.concurrency === REFERENCE_CONCURRENCY && ['queue', 'oip-rest', 'oip-grpc'].includes(r.target))];
  for (let i = 1; i < PLAN.protocolRounds; i++) {
    const rows: OnlineRow[] = [];
    for (const subject of [queue, oipRest, oipGrpc]) {
      rows.push((await measureStep(subject, REFERENCE_CONCURRENCY, subject === oipRest ? restBodies : singleBodies)).row);
    }
    protocolRounds.push(rows);
  }
  const protocols = protocolRatios(protocolRounds);

  const grpcFront = await measureGrpcFronts(grpcRequests, reference?.row);

  // The second model (a different signature, records of its graph's inputs) on its own online route.
  const speciesBodies = generateSpeciesRecords(64).map((r) => JSON.stringify(r));
  const species: Subject = { target: 'species', url: `${main.api.url}/models/species/predict`, stack: main };
  await checkPath(species.url, speciesBodies[0]!, 'the api (POST /models/species/predict)');
  for (const c of SECOND_MODEL_CONCURRENCIES) online.push((await measureStep(species, c, speciesBodies)).row);

  // Fraud version 2, trained by XGBoost and converted at load, beside version 1 (queue's rows at the same concurrencies).
  const xgboost: Subject = { target: 'xgboost', url: `${main.api.url}/models/fraud/versions/2/predict`, stack: main };
  await checkPath(xgboost.url, singleBodies[0]!, 'the api (POST /models/fraud/versions/2/predict)');
  for (const c of SECOND_MODEL_CONCURRENCIES) online.push((await measureStep(xgboost, c, singleBodies)).row);

  log(`latency breakdown at c=1: ${PLAN.breakdownRequests} sequential requests (Server-Timing)`);
  const breakdown: LatencyBreakdown = await measureBreakdown(queue.url, singleBodies, PLAN.breakdownRequests);

  // What clients send vs what scripts run inside Redis, counted apart from the timed steps
  // because MONITOR itself slows Redis down.
  log(`Redis census: MONITOR for ${CENSUS_S} s at c=${REFERENCE_CONCURRENCY} (not timed)`);
  const census = await startMonitorCensus(redis.url);
  const censusLoad = await runLoad({ url: queue.url, concurrency: REFERENCE_CONCURRENCY, durationS: CENSUS_S, bodies: singleBodies });
  await census.stop();

  const batch: BatchRow[] = [];
  const batchRow = (row: OnlineRow, n: number): BatchRow => ({ ...row, records_per_request: n, records_per_s: Math.round(row.rps * n) });
  for (const n of BATCH_SIZES) {
    for (const subject of [
      { ...queue, url: `${main.api.url}/predict/batch` },
      { ...plain, url: `${baseline.url}/predict/batch` },
    ]) {
      const { row } = await measureStep(subject, BATCH_CONCURRENCY, batchBodies.get(n)!);
      batch.push(batchRow(row, n));
    }
  }

  // 100-record calls over the protocols beside /predict/batch's, in interleaved rounds: the same
  // records as tensors [100], in records/s and the api's CPU per record.
  const tensorBatch = await measureTensorBatches(main, grpcPort, batchBodies.get(TENSOR_BATCH)!);

  let telemetry: {
    concurrency: number;
    rounds: number;
    on_rps: number;
    off_rps: number;
    ratio: number;
    on_cpu_ms_per_request: number;
    off_cpu_ms_per_request: number;
    /** Each round's on and off steps, in the order they ran. */
    steps: Pick<OnlineRow, 'rps' | 'p99_ms' | 'redis_commands_per_request' | 'cpu_ms_per_request' | 'cpu_cores'>[][];
  } | null = null;
  if (!flags['no-telemetry-compare']) {
    // Two fresh stacks started together, so neither has had longer to warm up than the other.
    log('telemetry on vs off: two fresh api + worker pairs, one with OTEL_SDK_DISABLED=true');
    const [onStack, off] = await Promise.all([
      startStack('otel-on', ONLINE_WORKERS),
      startStack('otel-off', ONLINE_WORKERS, { OTEL_SDK_DISABLED: 'true' }),
    ]);
    const onSubject: Subject = { target: 'queue', url: `${onStack.api.url}/predict`, stack: onStack };
    const offSubject: Subject = { target: 'queue', url: `${off.api.url}/predict`, stack: off };
    const on: OnlineRow[] = [];
    const offRows: OnlineRow[] = [];
    for (let i = 0; i < PLAN.telemetryRounds; i++) {
      // Alternate which goes first, so a drift in background load does not favour one side.
      const order = i % 2 === 0 ? [onSubject, offSubject] : [offSubject, onSubject];
      for (const subject of order) {
        const { row } = await measureStep(subject, REFERENCE_CONCURRENCY, singleBodies);
        (subject === onSubject ? on : offRows).push(row);
      }
    }
    await Promise.all([stopStack(onStack), stopStack(off)]);
    const onRps = round(mean(on.map((r) => r.rps)), 1);
    const offRps = round(mean(offRows.map((r) => r.rps)), 1);
    telemetry = {
      concurrency: REFERENCE_CONCURRENCY,
      rounds: PLAN.telemetryRounds,
      on_rps: onRps,
      off_rps: offRps,
      ratio: round(onRps / Math.max(1, offRps), 3),
      on_cpu_ms_per_request: round(mean(on.map((r) => r.cpu_ms_per_request ?? 0)), 3),
      off_cpu_ms_per_request: round(mean(offRows.map((r) => r.cpu_ms_per_request ?? 0)), 3),
      steps: on.map((r, i) =>
        [r, offRows[i]!].map(({ rps, p99_ms, redis_commands_per_request, cpu_ms_per_request, cpu_cores }) => ({
          rps,
          p99_ms,
          redis_commands_per_request,
          cpu_ms_per_request,
          cpu_cores,
        })),
      ),
    };
  }

  // Scaling: the reference concurrency against 1, 2 (and 4) worker processes behind one api.
  const scaling: (Pick<OnlineRow, 'rps' | 'p99_ms' | 'avg_batch' | 'cpu_cores' | 'cpu_ms_per_request'> & { workers: number })[] = [];
  for (const n of PLAN.scaling) {
    await scaleWorkers(main, n);
    const { row } = await measureStep(queue, REFERENCE_CONCURRENCY, singleBodies);
    scaling.push({
      workers: n,
      rps: row.rps,
      p99_ms: row.p99_ms,
      avg_batch: row.avg_batch,
      cpu_cores: row.cpu_cores,
      cpu_ms_per_request: row.cpu_ms_per_request,
    });
  }
  await stopStack(main);
  await baseline.stop();

  const cluster = flags.cluster ? await measureCluster(singleBodies) : null;

  type BulkReport = BulkOutcome & {
    workers?: number;
    api_peak_rss_mb?: number;
    worker_peak_rss_mb?: number;
    cpu_cores?: Record<string, number>;
    /** Cores per process in each phase: submitted (body parsed and staged), scored, downloaded. */
    cpu_cores_by_phase?: Record<string, Record<string, number>>;
  };
  let bulk: BulkReport = { available: false, reason: 'skipped (--no-bulk)' };
  /** The same job pinned to fraud version 2 (XGBoost), on the same stack once the first is done. */
  let bulkXgboost: BulkOutcome = { available: false, reason: 'skipped (--no-bulk)' };
  if (!flags['no-bulk']) {
    // Fresh processes, so the peaks are the bulk job's and not what online load left behind.
    const bulkStack = await startStack('bulk', BULK_WORKERS);
    log(`bulk: generating ${BULK_RECORDS} NDJSON records`);
    const body = buildNdjson(BULK_RECORDS);
    log(`bulk: POST /jobs with ${(body.length / 1e6).toFixed(1)} MB, ${BULK_WORKERS} workers`);
    const processes = [bulkStack.api, ...bulkStack.workers];
    const rss = sampleRss(processes.map((p) => p.pid));
    const pids: Record<string, number> = { loadgen: 0, redis: redisPid };
    for (const p of processes) pids[p.name.slice('bulk-'.length)] = p.pid;
    let cpu = meterCpu(pids);
    const phaseCores: Record<string, Record<string, number>> = {};
    const cpuCores = meterCpu(pids);
    const outcome = await runBulk(bulkStack.api.url, body, BULK_RECORDS, Math.max(120_000, BULK_RECORDS / 2), (phase) => {
      phaseCores[phase] = cpu.stop();
      cpu = meterCpu(pids);
    });
    const totalCores = cpuCores.stop();
    const peaks = rss.peaks();
    rss.stop();
    const peakOf = (ps: ServerProcess[]) => round(Math.max(0, ...ps.map((p) => peaks.get(p.pid) ?? 0)), 1);
    bulk = outcome.available
      ? {
          ...outcome,
          workers: BULK_WORKERS,
          api_peak_rss_mb: peakOf([bulkStack.api]),
          worker_peak_rss_mb: peakOf(bulkStack.workers),
          cpu_cores: totalCores,
          cpu_cores_by_phase: phaseCores,
        }
      : outcome;
    log(outcome.available ? `bulk: ${outcome.records_per_s} records/s over ${outcome.seconds} s` : `bulk: not available (${outcome.reason})`);
    bulkXgboost = await runBulk(bulkStack.api.url, body, BULK_RECORDS, Math.max(120_000, BULK_RECORDS / 2), undefined, '?model=fraud&version=2');
    log(
      bulkXgboost.available
        ? `bulk, fraud version 2 (XGBoost): ${bulkXgboost.records_per_s} records/s over ${bulkXgboost.seconds} s`
        : `bulk, fraud version 2 (XGBoost): not available (${bulkXgboost.reason})`,
    );
    await stopStack(bulkStack);
  }

  type ProfileReport = {
    concurrency: number;
    rps: number;
    p99_ms: number;
    api: ProfileSummary | null;
    worker: ProfileSummary | null;
    /** A smaller bulk job under the profiler: the api while it takes the body, the worker while it scores. */
    bulk: { records: number; api_submit: ProfileSummary | null; worker_scoring: ProfileSummary | null } | null;
  };
  let profile: ProfileReport | null = null;
  if (!flags['no-profile']) {
    rmSync(PROFILE_DIR, { recursive: true, force: true });
    const profiled = await startStack('profile', ONLINE_WORKERS, {}, (role) => ['--cpu-prof', `--cpu-prof-dir=${join(PROFILE_DIR, role)}`]);
    const step = await measureStep({ target: 'queue', url: `${profiled.api.url}/predict`, stack: profiled }, REFERENCE_CONCURRENCY, singleBodies);
    let bulkWindows: { submit: { startUs: number; endUs: number }; scoring: { startUs: number; endUs: number } } | undefined;
    const profileBulkRecords = Math.min(BULK_RECORDS, PROFILE_BULK_RECORDS);
    if (!flags['no-bulk']) {
      const body = buildNdjson(profileBulkRecords, 5000);
      const marks: number[] = [profileClockUs()];
      const outcome = await runBulk(profiled.api.url, body, profileBulkRecords, 120_000, () => marks.push(profileClockUs()));
      if (outcome.available && marks.length >= 3) {
        bulkWindows = { submit: { startUs: marks[0]!, endUs: marks[1]! }, scoring: { startUs: marks[1]!, endUs: marks[2]! } };
      }
    }
    // The profile is written as each process exits.
    await stopStack(profiled);
    const summary = (role: string, window: { startUs: number; endUs: number }) => {
      const file = existsSync(join(PROFILE_DIR, role)) ? newestProfile(join(PROFILE_DIR, role)) : undefined;
      return file ? summarizeProfile(file, window) : null;
    };
    profile = {
      concurrency: REFERENCE_CONCURRENCY,
      rps: step.row.rps,
      p99_ms: step.row.p99_ms,
      api: summary('api', step.windowUs),
      worker: summary('worker1', step.windowUs),
      bulk: bulkWindows
        ? { records: profileBulkRecords, api_submit: summary('api', bulkWindows.submit), worker_scoring: summary('worker1', bulkWindows.scoring) }
        : null,
    };
    log('profile: .cpuprofile files of the api and the worker are in bench/results/profiles');
  }

  // Online under bulk load, and fair share between jobs (issue 18): stacks of their own, one at a time.
  let mixed: MixedResult | null = null;
  if (!flags['no-mixed']) mixed = await measureMixed(redis, flags.quick ? QUICK_MIXED : FULL_MIXED, log);
  // What a shadow at 100% costs the callers (issue 20): a stack of its own, with and without it.
  let shadow: ShadowResult | null = null;
  if (!flags['no-shadow']) shadow = await measureShadow(redis, flags.quick ? QUICK_SHADOW : FULL_SHADOW, log);

  const referenceOk = Math.max(1, reference?.row.requests ?? 0);
  const redisPerPrediction = reference?.row.redis_commands_per_request ?? null;
  const report = {
    machine: {
      cpu_model: cpus()[0]?.model ?? 'unknown',
      cores: cpus().length,
      memory_gb: round(totalmem() / 1024 ** 3, 1),
      os: `linux ${release()}`,
      node: process.version,
      redis: redisVersion,
      load_average_at_start: loadavg().map((l) => round(l, 2)),
      note: 'the api, workers, baseline, Redis and the load generator (autocannon, in the bench process) share these cores',
    },
    settings: {
      run: PLAN.name,
      step_seconds: PLAN.stepS,
      warmup_seconds: PLAN.warmupS,
      load_generator: 'closed loop, in the bench process: autocannon 9 for HTTP, node:http2 with prebuilt gRPC frames for gRPC',
      online_workers: ONLINE_WORKERS,
      bulk_workers: BULK_WORKERS,
      batch_concurrency: BATCH_CONCURRENCY,
      max_batch_size: effective.worker.maxBatchSize,
      max_batch_delay_ms: effective.worker.maxBatchDelayMs,
      worker_concurrency: effective.worker.concurrency,
      intra_op_threads: effective.worker.intraOpThreads,
      max_batch_records: effective.api.maxBatchRecords,
      bulk_chunk_size: effective.bulk.chunkSize,
      log_level: effective.logLevel,
      telemetry: effective.telemetry.disabled ? 'off' : 'on',
    },
    started_at: startedAt.toISOString(),
    duration_s: Math.round((Date.now() - startedAt.getTime()) / 1000),
    online,
    protocols,
    grpc_front: grpcFront,
    batch,
    tensor_batch: tensorBatch,
    bulk,
    bulk_xgboost: bulkXgboost,
    scaling,
    redis_commands_per_prediction: redisPerPrediction,
    redis: {
      concurrency: REFERENCE_CONCURRENCY,
      commands_per_prediction: redisPerPrediction,
      redis_cpu_us_per_prediction: reference ? round(reference.commands.usec / referenceOk, 2) : null,
      by_command: reference?.commands.byCommand ?? {},
      census: {
        seconds: CENSUS_S,
        predictions: censusLoad.ok,
        client_commands_per_prediction: round(census.client / Math.max(1, censusLoad.ok), 2),
        script_commands_per_prediction: round(census.script / Math.max(1, censusLoad.ok), 2),
        client_by_command: census.clientByCommand,
      },
    },
    latency_breakdown_c1: breakdown,
    telemetry,
    cluster,
    profile,
    mixed,
    shadow,
    idle_rss: idleRss,
    targets: [] as ReturnType<typeof evaluateTargets>,
  };
  report.targets = evaluateTargets(report);

  mkdirSync(RESULTS_DIR, { recursive: true });
  const json = JSON.stringify(report, null, 2) + '\n';
  const stamp = startedAt.toISOString().replace(/[:.]/g, '-').slice(0, 19);
  writeFileSync(join(RESULTS_DIR, 'latest.json'), json);
  writeFileSync(join(RESULTS_DIR, `${stamp}-${PLAN.name}.json`), json);
  printReport(report);
  if (mixed) printMixed(mixed);
  if (shadow) printShadow(shadow);
  printIdleRss(idleRss);
  log(`wrote bench/results/latest.json and bench/results/${stamp}-${PLAN.name}.json (${report.duration_s} s)`);
}

/** Summary of one side of the --cluster comparison over its rounds. */
type ClusterSide = {
  rps: number;
  p50_ms: number;
  p99_ms: number;
  errors: number;
  /** Commands Redis ran per 2xx response, script-internal ones included (on a cluster: every master's). */
  redis_commands_per_prediction: number;
  /** Redis command time per prediction (INFO commandstats usec; on a cluster: the masters'). */
  redis_command_us_per_prediction: number;
  /** CPU of the Redis processes per prediction (on a cluster: masters and replicas). */
  redis_process_us_per_prediction: number;
  /** The same for the replicas alone (0 on the single Redis, which has none). */
  replica_process_us_per_prediction: number;
  cpu_ms_per_request: number;
};

/**
 * /predict at the reference concurrency against a local Redis Cluster (three masters with a
 * replica each; the online and bulk queues in three shards) beside the single Redis, one api
 * and one worker on each, alternating. One api sends to one shard: what the step measures is
 * the cost of cluster mode per prediction (the cluster client, sharded pub/sub, replication),
 * not the gain of more shards, which needs more cores than this machine has.
 */
async function measureCluster(bodies: string[]) {
  log(
    `cluster: a local Redis Cluster (${CLUSTER_SHARDS} masters, ${CLUSTER_SHARDS} replicas) beside the single Redis, one api and one worker on each`,
  );
  benchCluster = await startBenchCluster();
  const shards = { ONLINE_QUEUE_SHARDS: String(CLUSTER_SHARDS), BULK_QUEUE_SHARDS: String(CLUSTER_SHARDS) };
  const [single, onCluster] = await Promise.all([
    startStack('cmp-single', ONLINE_WORKERS),
    startStack('cmp-cluster', ONLINE_WORKERS, { REDIS_CLUSTER_NODES: benchCluster.nodes.join(','), ...shards }),
  ]);
  // The bench starts the api on /health; in cluster mode it may still be discovering the slots.
  const readyBy = Date.now() + 30_000;
  while (
    (await fetch(`${onCluster.api.url}/ready`).then(
      (r) => r.status,
      () => 0,
    )) !== 200
  ) {
    if (Date.now() > readyBy) throw new StartError(`the api on the cluster was not ready within 30 s:\n${onCluster.api.output()}`);
    await new Promise((r) => setTimeout(r, 100));
  }
  await checkPath(`${onCluster.api.url}/predict`, bodies[0]!, 'the api on the cluster (POST /predict)');
  const subjects: Record<'single' | 'cluster', Subject> = {
    single: { target: 'queue', url: `${single.api.url}/predict`, stack: single },
    cluster: {
      target: 'queue',
      url: `${onCluster.api.url}/predict`,
      stack: onCluster,
      redis: { commandStats: benchCluster.masterCommandStats, pids: benchCluster.pids },
    },
  };
  const steps: Record<'single' | 'cluster', Step[]> = { single: [], cluster: [] };
  for (let i = 0; i < CLUSTER_ROUNDS; i++) {
    for (const side of i % 2 === 0 ? (['single', 'cluster'] as const) : (['cluster', 'single'] as const)) {
      log(`cluster: round ${i + 1}, ${side}`);
      steps[side].push(await measureStep(subjects[side], REFERENCE_CONCURRENCY, bodies));
    }
  }
  await Promise.all([stopStack(single), stopStack(onCluster)]);
  const summarize = (list: Step[]): ClusterSide => {
    const ok = Math.max(
      1,
      list.reduce((n, s) => n + s.row.requests, 0),
    );
    const durationS = PLAN.stepS * list.length;
    const coresOf = (prefix: string) =>
      mean(list.map((s) => Object.entries(s.row.cpu_cores).reduce((n, [k, v]) => (k.startsWith(prefix) ? n + v : n), 0)));
    const perPrediction = (cores: number) => round((cores * durationS * 1e6) / ok, 2);
    return {
      rps: round(mean(list.map((s) => s.row.rps)), 1),
      p50_ms: round(mean(list.map((s) => s.row.p50_ms)), 2),
      p99_ms: round(mean(list.map((s) => s.row.p99_ms)), 2),
      errors: list.reduce((n, s) => n + s.row.errors, 0),
      redis_commands_per_prediction: round(list.reduce((n, s) => n + s.commands.total, 0) / ok, 2),
      redis_command_us_per_prediction: round(list.reduce((n, s) => n + s.commands.usec, 0) / ok, 2),
      redis_process_us_per_prediction: perPrediction(coresOf('redis')),
      replica_process_us_per_prediction: perPrediction(coresOf('redis-r')),
      cpu_ms_per_request: round(mean(list.map((s) => s.row.cpu_ms_per_request ?? 0)), 3),
    };
  };
  return {
    concurrency: REFERENCE_CONCURRENCY,
    shards: CLUSTER_SHARDS,
    rounds: CLUSTER_ROUNDS,
    apis: 1,
    workers: ONLINE_WORKERS,
    single: summarize(steps.single),
    cluster: summarize(steps.cluster),
    cluster_commands_by_command: steps.cluster.at(-1)?.commands.byCommand ?? {},
    steps: (['single', 'cluster'] as const).flatMap((side) =>
      steps[side].map(({ row }) => ({
        redis: side,
        rps: row.rps,
        p99_ms: row.p99_ms,
        redis_commands_per_request: row.redis_commands_per_request,
        cpu_cores: row.cpu_cores,
      })),
    ),
  };
}

async function cleanUp(): Promise<void> {
  killAll();
  await redis?.close().catch(() => undefined);
  await benchCluster?.close().catch(() => undefined);
}

process.once('SIGINT', () => {
  log('interrupted');
  void cleanUp().then(() => process.exit(130));
});

try {
  await main();
  await cleanUp();
} catch (err) {
  process.stderr.write(`\nbench failed: ${err instanceof Error ? err.message : String(err)}\n`);
  if (!(err instanceof StartError) && err instanceof Error && err.stack) process.stderr.write(`${err.stack}\n`);
  await cleanUp();
  process.exit(1);
}
