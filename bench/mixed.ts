// The mixed row (issue 18): what an online caller waits while a bulk job is scored, and what a
// small job waits behind another tenant's large one. Online /predict calls leave open-loop at a
// fixed rate from this process; the bulk body is sent by curl, another process. Each figure is
// taken alone and under the other load in the same run, so the ratios compare like with like on
// this shared machine. The event-loop stalls of the api and the workers (the histogram
// scoring_event_loop_stall_seconds, read from /metrics before and after each phase) say where
// a slow call waited. Runs alone as `node bench/mixed.ts [--quick]`, or as part of `npm run bench`.
import { mkdtempSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { parseArgs } from 'node:util';
import { generateFraudRecords } from '../scripts/model/fraud-data.ts';
import { startTestRedis, type TestRedis } from '../test/helpers/redis-server.ts';
import { submitFileWithCurl } from '../test/helpers/curl-job.ts';
import { buildNdjson } from './bulk.ts';
import { median } from './load.ts';
import { startOpenLoop, summarize, type LatencySummary } from './open-loop.ts';
import { killAll, startServer, type ServerProcess } from './processes.ts';
import { meterCpu } from './process-stats.ts';

export type MixedPlan = {
  /** Records of the large job. */
  largeRecords: number;
  smallRecords: number;
  /** Online calls per second, open-loop. */
  rate: number;
  /** Seconds of online load alone. */
  onlineS: number;
  /** Alone / under load pairs, interleaved; figures are medians over them. */
  rounds: number;
};

export const FULL_MIXED: MixedPlan = { largeRecords: 1_000_000, smallRecords: 10_000, rate: 400, onlineS: 10, rounds: 3 };
export const QUICK_MIXED: MixedPlan = { largeRecords: 200_000, smallRecords: 10_000, rate: 400, onlineS: 4, rounds: 1 };

const KEYS = { a: 'bench-tenant-a', b: 'bench-tenant-b' } as const;
const POLL_MS = 20;

/** The longest event-loop stall of a process over a phase, from its histogram's buckets. */
export type Stalls = { p99_ms: number; max_ms: number; windows: number };

/**
 * Cores each process used over a phase (CPU seconds / wall seconds): the api, each worker, Redis,
 * and this process (the open-loop load generator; curl is not counted).
 */
type Cores = Record<string, number>;

type Phase = { online?: LatencySummary; bulk_records_per_s?: number; seconds?: number; stalls: Record<string, Stalls>; cores?: Cores };

export type PoolResult = {
  pools: 'both roles' | 'separate pools';
  rounds: { online_alone: Phase; bulk_alone?: Phase; mixed: Phase }[];
  online_alone_p99_ms: number;
  online_mixed_p99_ms: number;
  online_mixed_failed: number;
  /** Mixed p99 over alone p99 (medians). */
  p99_ratio: number;
  bulk_alone_records_per_s?: number;
  bulk_mixed_records_per_s: number;
  /** Bulk records/s with online load over alone. */
  bulk_ratio?: number;
  /** Cores the service used (load generator left out), medians: online load alone, the bulk job alone. */
  online_alone_cores: number;
  bulk_alone_cores?: number;
  /** CPU ms per online call, all of the service's processes together, online load alone. */
  online_cpu_ms_per_call: number;
};

export type FairnessResult = {
  small_alone_s: number;
  small_behind_large_s: number;
  ratio: number;
  high_behind_large_s: number;
  high_ratio: number;
  /** A low-priority small job: still waiting when the normal one behind the same large job is done. */
  low_waited_for_large: boolean;
};

export type MixedResult = { plan: MixedPlan; both: PoolResult; split: PoolResult; fairness: FairnessResult };

type Stack = { api: ServerProcess; workers: ServerProcess[]; redisPid: number };

/** A meter of the cores each of the stack's processes uses over a phase. */
function stackCpu(stack: Stack) {
  const pids: Record<string, number> = { api: stack.api.pid, redis: stack.redisPid, load: 0 };
  stack.workers.forEach((w, i) => (pids[`worker${i + 1}`] = w.pid));
  return meterCpu(pids);
}

/** Cores of the service's own processes (the load generator left out). */
function serviceCores(cores: Cores): number {
  return Object.entries(cores).reduce((sum, [name, c]) => (name === 'load' ? sum : sum + c), 0);
}

async function scrapeStallBuckets(url: string): Promise<Map<number, number>> {
  const text = await (await fetch(`${url}/metrics`)).text();
  const buckets = new Map<number, number>();
  for (const m of text.matchAll(/^scoring_event_loop_stall_seconds_bucket\{[^}]*le="([^"]+)"[^}]*\} (\d+)/gm)) {
    const le = m[1] === '+Inf' ? Infinity : Number(m[1]);
    buckets.set(le, (buckets.get(le) ?? 0) + Number(m[2]));
  }
  return buckets;
}

/** Reads every process's stall histogram now; the returned function gives the stalls since. */
async function stallMeter(stack: Stack): Promise<() => Promise<Record<string, Stalls>>> {
  const processes = [stack.api, ...stack.workers];
  const before = await Promise.all(processes.map((p) => scrapeStallBuckets(p.url)));
  return async () => {
    const after = await Promise.all(processes.map((p) => scrapeStallBuckets(p.url)));
    const out: Record<string, Stalls> = {};
    processes.forEach((p, i) => {
      const bounds = [...after[i]!.keys()].sort((a, b) => a - b);
      const counts = bounds.map((le) => (after[i]!.get(le) ?? 0) - (before[i]!.get(le) ?? 0));
      const total = counts[counts.length - 1] ?? 0;
      const at = (q: number) => {
        const k = counts.findIndex((c) => c >= q * total);
        const le = bounds[k] ?? Infinity;
        // The bucket's upper bound: "at most this long", in ms.
        return le === Infinity ? Infinity : Math.round(le * 1000 * 10) / 10;
      };
      out[p.name] = { p99_ms: total > 0 ? at(0.99) : 0, max_ms: total > 0 ? at(1) : 0, windows: total };
    });
    return out;
  };
}

async function jobStatus(apiUrl: string, jobId: string, key: string): Promise<string> {
  const res = await fetch(`${apiUrl}/jobs/${jobId}`, { headers: { authorization: `Bearer ${key}` } });
  return ((await res.json()) as { status: string }).status;
}

async function untilCompleted(apiUrl: string, jobId: string, key: string, timeoutMs = 300_000): Promise<number> {
  const deadline = Date.now() + timeoutMs;
  for (;;) {
    const status = await jobStatus(apiUrl, jobId, key);
    if (status === 'completed') return performance.now();
    if (status === 'failed' || status === 'cancelled') throw new Error(`job ${jobId} ended ${status}`);
    if (Date.now() > deadline) throw new Error(`job ${jobId} not completed within ${timeoutMs} ms (${status})`);
    await new Promise((r) => setTimeout(r, POLL_MS));
  }
}

/** Submits the file with curl and waits for the job: seconds from the first byte sent to completed. */
async function timedJob(apiUrl: string, file: string, key: string, query = ''): Promise<{ jobId: string; seconds: number }> {
  const started = performance.now();
  const jobId = await submitFileWithCurl(apiUrl, file, key, query);
  const done = await untilCompleted(apiUrl, jobId, key);
  return { jobId, seconds: (done - started) / 1000 };
}

async function onlineAlone(stack: Stack, plan: MixedPlan, bodies: string[]): Promise<Phase> {
  const stalls = await stallMeter(stack);
  const cpu = stackCpu(stack);
  const load = startOpenLoop({ url: `${stack.api.url}/predict`, rate: plan.rate, bodies, headers: { authorization: `Bearer ${KEYS.b}` } });
  await new Promise((r) => setTimeout(r, plan.onlineS * 1000));
  const calls = await load.stop();
  return { online: summarize(calls), stalls: await stalls(), cores: cpu.stop() };
}

async function bulkAlone(stack: Stack, plan: MixedPlan, file: string): Promise<Phase> {
  const stalls = await stallMeter(stack);
  const cpu = stackCpu(stack);
  const { seconds } = await timedJob(stack.api.url, file, KEYS.a);
  return { bulk_records_per_s: Math.round(plan.largeRecords / seconds), seconds, stalls: await stalls(), cores: cpu.stop() };
}

async function mixed(stack: Stack, plan: MixedPlan, file: string, bodies: string[]): Promise<Phase> {
  const load = startOpenLoop({ url: `${stack.api.url}/predict`, rate: plan.rate, bodies, headers: { authorization: `Bearer ${KEYS.b}` } });
  await new Promise((r) => setTimeout(r, 1000));
  const stalls = await stallMeter(stack);
  const from = performance.now();
  const { seconds } = await timedJob(stack.api.url, file, KEYS.a);
  const to = performance.now();
  const calls = await load.stop();
  // Only the calls due while the job was uploaded and scored.
  return { online: summarize(calls, from, to), bulk_records_per_s: Math.round(plan.largeRecords / seconds), seconds, stalls: await stalls() };
}

async function measurePools(
  stack: Stack,
  pools: PoolResult['pools'],
  plan: MixedPlan,
  file: string,
  bodies: string[],
  withBulkAlone: boolean,
  log: (m: string) => void,
) {
  const rounds: PoolResult['rounds'] = [];
  for (let round = 0; round < plan.rounds; round++) {
    const alone = await onlineAlone(stack, plan, bodies);
    const bulk = withBulkAlone ? await bulkAlone(stack, plan, file) : undefined;
    const both = await mixed(stack, plan, file, bodies);
    rounds.push({ online_alone: alone, ...(bulk ? { bulk_alone: bulk } : {}), mixed: both });
    log(`  round ${round + 1}: ${JSON.stringify(rounds.at(-1))}`);
  }
  const aloneP99 = median(rounds.map((r) => r.online_alone.online!.p99_ms));
  const mixedP99 = median(rounds.map((r) => r.mixed.online!.p99_ms));
  const bulkAloneRate = withBulkAlone ? median(rounds.map((r) => r.bulk_alone!.bulk_records_per_s!)) : undefined;
  const bulkMixedRate = median(rounds.map((r) => r.mixed.bulk_records_per_s!));
  const result: PoolResult = {
    pools,
    rounds,
    online_alone_p99_ms: aloneP99,
    online_mixed_p99_ms: mixedP99,
    online_mixed_failed: rounds.reduce((n, r) => n + r.mixed.online!.failed, 0),
    p99_ratio: Math.round((mixedP99 / aloneP99) * 100) / 100,
    bulk_mixed_records_per_s: bulkMixedRate,
    online_alone_cores: round3(median(rounds.map((r) => serviceCores(r.online_alone.cores!)))),
    // Calls were due at plan.rate a second: cores × 1000 ÷ rate is ms of CPU per call.
    online_cpu_ms_per_call: round3((median(rounds.map((r) => serviceCores(r.online_alone.cores!))) * 1000) / plan.rate),
  };
  if (withBulkAlone) result.bulk_alone_cores = round3(median(rounds.map((r) => serviceCores(r.bulk_alone!.cores!))));
  if (bulkAloneRate !== undefined) {
    result.bulk_alone_records_per_s = bulkAloneRate;
    result.bulk_ratio = Math.round((bulkMixedRate / bulkAloneRate) * 100) / 100;
  }
  return result;
}

async function measureFairness(stack: Stack, largeFile: string, smallFile: string): Promise<FairnessResult> {
  const api = stack.api.url;
  const alone = await timedJob(api, smallFile, KEYS.b);
  const behind = async (query: string) => {
    const large = submitFileWithCurl(api, largeFile, KEYS.a);
    await new Promise((r) => setTimeout(r, 300));
    const small = await timedJob(api, smallFile, KEYS.b, query);
    const largeId = await large;
    return { small, largeId };
  };
  const normal = await behind('');
  await fetch(`${api}/jobs/${normal.largeId}`, { method: 'DELETE', headers: { authorization: `Bearer ${KEYS.a}` } });
  const high = await behind('?priority=high');
  // The low job goes in behind the same large job: it should still wait when the normal one is done.
  const lowId = await submitFileWithCurl(api, smallFile, KEYS.b, '?priority=low');
  const normalAgain = await timedJob(api, smallFile, KEYS.b);
  const lowWaited = (await jobStatus(api, lowId, KEYS.b)) !== 'completed';
  await fetch(`${api}/jobs/${high.largeId}`, { method: 'DELETE', headers: { authorization: `Bearer ${KEYS.a}` } });
  await untilCompleted(api, lowId, KEYS.b);
  void normalAgain;
  return {
    small_alone_s: round3(alone.seconds),
    small_behind_large_s: round3(normal.small.seconds),
    ratio: round3(normal.small.seconds / alone.seconds),
    high_behind_large_s: round3(high.small.seconds),
    high_ratio: round3(high.small.seconds / alone.seconds),
    low_waited_for_large: lowWaited,
  };
}

function round3(v: number): number {
  return Math.round(v * 1000) / 1000;
}

async function startMixedStack(redis: TestRedis, name: string, roles: string[], extra: Record<string, string> = {}): Promise<Stack> {
  const env = {
    REDIS_URL: redis.url,
    QUEUE_PREFIX: `bench-${name}`,
    LOG_LEVEL: 'warn',
    HOST: '127.0.0.1',
    API_KEYS: `${KEYS.a},${KEYS.b}`,
    MAX_JOB_RECORDS: String(5_000_000),
    JOB_BODY_LIMIT_BYTES: String(1 << 30),
    JOB_BODY_TIMEOUT_MS: '120000',
    ...extra,
  };
  const [api, ...workers] = await Promise.all([
    startServer('api', { name: `${name}-api`, env }),
    ...roles.map((role, i) => startServer('worker', { name: `${name}-worker${i + 1}`, env: { ...env, WORKER_QUEUES: role } })),
  ]);
  const redisPid = Number(/process_id:(\d+)/.exec(await redis.client.info('server'))![1]);
  return { api: api!, workers, redisPid };
}

async function stopStack(stack: Stack): Promise<void> {
  await Promise.all([stack.api, ...stack.workers].map((p) => p.stop()));
}

/** Both scenarios on a Redis of the caller's: default pools (two workers, both roles), then one online and one bulk worker. */
export async function measureMixed(redis: TestRedis, plan: MixedPlan, log: (m: string) => void): Promise<MixedResult> {
  const dir = mkdtempSync(join(tmpdir(), 'bench-mixed-'));
  try {
    const largeFile = join(dir, 'large.ndjson');
    const smallFile = join(dir, 'small.ndjson');
    writeFileSync(largeFile, buildNdjson(plan.largeRecords, 5000));
    writeFileSync(smallFile, buildNdjson(plan.smallRecords, 9000));
    const bodies = generateFraudRecords(11, 64).map((r) => JSON.stringify(r));

    log(`mixed: two workers with both roles; ${plan.rate}/s open-loop /predict, alone and during a ${plan.largeRecords}-record job`);
    const bothStack = await startMixedStack(redis, 'mixed-both', ['online,bulk', 'online,bulk']);
    let both: PoolResult;
    let fairness: FairnessResult;
    try {
      both = await measurePools(bothStack, 'both roles', plan, largeFile, bodies, true, log);
      log(`mixed: a ${plan.smallRecords}-record job alone and 300 ms behind another key's ${plan.largeRecords}-record job`);
      fairness = await measureFairness(bothStack, largeFile, smallFile);
    } finally {
      await stopStack(bothStack);
    }
    log('mixed: one online worker and one bulk worker');
    const splitStack = await startMixedStack(redis, 'mixed-split', ['online', 'bulk']);
    let split: PoolResult;
    try {
      split = await measurePools(splitStack, 'separate pools', plan, largeFile, bodies, false, log);
    } finally {
      await stopStack(splitStack);
    }
    return { plan, both, split, fairness };
  } finally {
    rmSync(dir, { recursive: true, force: true });
  }
}

export function printMixed(result: MixedResult): void {
  const lines: string[] = [];
  for (const pool of [result.both, result.split]) {
    lines.push(
      `Mixed load, ${pool.pools} (medians of ${pool.rounds.length} round(s), ${result.plan.rate}/s open-loop, ${result.plan.largeRecords}-record job)`,
    );
    lines.push(
      `  online p99 alone ${pool.online_alone_p99_ms} ms, during the job ${pool.online_mixed_p99_ms} ms: ${pool.p99_ratio}x; failed calls ${pool.online_mixed_failed}`,
    );
    if (pool.bulk_ratio !== undefined) {
      lines.push(
        `  bulk alone ${pool.bulk_alone_records_per_s} records/s, with online load ${pool.bulk_mixed_records_per_s} records/s: ${pool.bulk_ratio}x`,
      );
    } else {
      lines.push(`  bulk with online load ${pool.bulk_mixed_records_per_s} records/s`);
    }
    lines.push(
      `  cores used by the service: online load alone ${pool.online_alone_cores} (${pool.online_cpu_ms_per_call} ms of CPU per call)` +
        (pool.bulk_alone_cores !== undefined ? `, the bulk job alone ${pool.bulk_alone_cores}` : ''),
    );
    pool.rounds.forEach((r, i) => {
      const fmt = (p: { stalls: Record<string, Stalls> }) =>
        Object.entries(p.stalls)
          .map(([name, s]) => `${name.replace(/^mixed-\w+-/, '')} p99 ${s.p99_ms} max ${s.max_ms}`)
          .join(', ');
      lines.push(
        `  round ${i + 1}: alone p50 ${r.online_alone.online!.p50_ms} p99 ${r.online_alone.online!.p99_ms} ms | mixed p50 ${r.mixed.online!.p50_ms} p99 ${r.mixed.online!.p99_ms} max ${r.mixed.online!.max_ms} ms (${r.mixed.online!.calls} calls)`,
      );
      lines.push(`    event-loop stalls (ms, per 100 ms window) alone: ${fmt(r.online_alone)}`);
      lines.push(
        `    cores, online alone: ${JSON.stringify(r.online_alone.cores)}${r.bulk_alone ? `; bulk alone: ${JSON.stringify(r.bulk_alone.cores)}` : ''}`,
      );
      if (r.bulk_alone) lines.push(`    bulk alone: ${fmt(r.bulk_alone)}`);
      lines.push(`    mixed: ${fmt(r.mixed)}`);
    });
  }
  const f = result.fairness;
  lines.push(
    `Fair share: ${result.plan.smallRecords}-record job alone ${f.small_alone_s} s, behind another key's large job ${f.small_behind_large_s} s (${f.ratio}x); priority=high ${f.high_behind_large_s} s (${f.high_ratio}x); priority=low waited for the large job: ${f.low_waited_for_large}`,
  );
  console.log(lines.join('\n'));
}

if (import.meta.main) {
  const { values } = parseArgs({ options: { quick: { type: 'boolean', default: false }, 'large-records': { type: 'string' } } });
  const plan = { ...(values.quick ? QUICK_MIXED : FULL_MIXED) };
  if (values['large-records']) plan.largeRecords = Number(values['large-records']);
  const redis = await startTestRedis();
  try {
    const result = await measureMixed(redis, plan, (m) => process.stderr.write(`[mixed ${new Date().toISOString().slice(11, 19)}] ${m}\n`));
    printMixed(result);
  } catch (err) {
    killAll();
    throw err;
  } finally {
    await redis.close();
  }
}
