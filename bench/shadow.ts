// The shadow row (issue 20): what a shadow at 100% costs the callers. /predict at 64 connections
// against one api and one worker holding fraud versions 1 (champion) and 2 (the XGBoost booster),
// with no routing and with routing.json's shadow at 100% of calls, alternating in interleaved
// rounds (each round in the other order), so both sides see the same machine. The worker's
// scoring_shadow_* counters say how many records were compared and how many shed.
// Runs alone as `node bench/shadow.ts [--quick]`, or as part of `npm run bench`.
import { cpSync, mkdtempSync, renameSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { parseArgs } from 'node:util';
import { generateFraudRecords } from '../scripts/model/fraud-data.ts';
import { startTestRedis, type TestRedis } from '../test/helpers/redis-server.ts';
import { median, round, runLoad, type LoadResult } from './load.ts';
import { ROOT, killAll, startServer } from './processes.ts';

export type ShadowPlan = { concurrency: number; stepS: number; warmupS: number; rounds: number };
export const FULL_SHADOW: ShadowPlan = { concurrency: 64, stepS: 10, warmupS: 3, rounds: 3 };
export const QUICK_SHADOW: ShadowPlan = { concurrency: 64, stepS: 3, warmupS: 1, rounds: 1 };

type Side = 'none' | 'shadow';
type Step = Pick<LoadResult, 'rps' | 'p50_ms' | 'p99_ms' | 'max_ms' | 'errors'>;

export type ShadowResult = {
  plan: ShadowPlan;
  rounds: Record<Side, Step>[];
  no_shadow: { rps: number; p50_ms: number; p99_ms: number };
  shadow: { rps: number; p50_ms: number; p99_ms: number };
  /** Medians: with the shadow over without. */
  p99_ratio: number;
  rps_ratio: number;
  errors: number;
  /** The worker's counters at the end: records compared, and records shed (the worker too busy to compare them). */
  compared: number;
  shed: number;
};

const ROUTING: Record<Side, object> = { none: {}, shadow: { shadow: { version: 2, percent: 100 } } };

async function metricSum(url: string, name: string, match = ''): Promise<number> {
  const text = await (await fetch(`${url}/metrics`)).text();
  let sum = 0;
  for (const m of text.matchAll(new RegExp(`^${name}\\{([^}]*)\\} ([0-9.e+-]+)$`, 'gm'))) if (m[1]!.includes(match)) sum += Number(m[2]);
  return sum;
}

async function until(what: string, check: () => Promise<boolean>, timeoutMs = 30_000): Promise<void> {
  const deadline = Date.now() + timeoutMs;
  while (!(await check().catch(() => false))) {
    if (Date.now() > deadline) throw new Error(`shadow bench: ${what} within ${timeoutMs} ms`);
    await new Promise((r) => setTimeout(r, 100));
  }
}

export async function measureShadow(redis: TestRedis, plan: ShadowPlan, log: (m: string) => void): Promise<ShadowResult> {
  const root = mkdtempSync(join(tmpdir(), 'bench-shadow-'));
  cpSync(join(ROOT, 'models', 'fraud'), join(root, 'fraud'), { recursive: true });
  const env = {
    REDIS_URL: redis.url,
    QUEUE_PREFIX: 'bench-shadow',
    LOG_LEVEL: 'warn',
    HOST: '127.0.0.1',
    MODEL_REPOSITORY: root,
    MODEL_POLL_SECONDS: '1',
  };
  const [api, worker] = await Promise.all([startServer('api', { name: 'shadow-api', env }), startServer('worker', { name: 'shadow-worker', env })]);
  const model = async () => (await (await fetch(`${api.url}/models/fraud`)).json()) as { routing?: object; versions?: { state: string }[] };
  const route = async (side: Side) => {
    const file = join(root, 'fraud', 'routing.json');
    writeFileSync(`${file}.tmp`, JSON.stringify(ROUTING[side]));
    renameSync(`${file}.tmp`, file);
    await until(`routing ${side} shown by the api`, async () => JSON.stringify((await model()).routing ?? {}) === JSON.stringify(ROUTING[side]));
  };
  try {
    await until('fraud versions 1 and 2 loaded', async () => (await model()).versions?.filter((v) => v.state === 'loaded').length === 2);
    const bodies = generateFraudRecords(23, 64).map((r) => JSON.stringify(r));
    const load = (durationS: number) => runLoad({ url: `${api.url}/predict`, concurrency: plan.concurrency, durationS, bodies });
    for (const side of ['shadow', 'none'] as const) {
      await route(side);
      await load(plan.warmupS);
    }
    const rounds: Record<Side, Step>[] = [];
    for (let i = 0; i < plan.rounds; i++) {
      const order: Side[] = i % 2 === 0 ? ['none', 'shadow'] : ['shadow', 'none'];
      const round: Partial<Record<Side, Step>> = {};
      for (const side of order) {
        await route(side);
        const r = await load(plan.stepS);
        round[side] = { rps: r.rps, p50_ms: r.p50_ms, p99_ms: r.p99_ms, max_ms: r.max_ms, errors: r.errors };
        log(`shadow round ${i + 1}, ${side}: ${r.rps} req/s, p50 ${r.p50_ms} ms, p99 ${r.p99_ms} ms, errors ${r.errors}`);
      }
      rounds.push(round as Record<Side, Step>);
    }
    const summary = (side: Side) => ({
      rps: round(median(rounds.map((r) => r[side].rps)), 1),
      p50_ms: round(median(rounds.map((r) => r[side].p50_ms)), 3),
      p99_ms: round(median(rounds.map((r) => r[side].p99_ms)), 3),
    });
    const none = summary('none');
    const shadow = summary('shadow');
    // Let the last comparisons land before reading the counters.
    await new Promise((r) => setTimeout(r, 1000));
    return {
      plan,
      rounds,
      no_shadow: none,
      shadow,
      p99_ratio: round(shadow.p99_ms / none.p99_ms, 3),
      rps_ratio: round(shadow.rps / none.rps, 3),
      errors: rounds.reduce((n, r) => n + r.none.errors + r.shadow.errors, 0),
      compared: await metricSum(worker.url, 'scoring_shadow_compared_total'),
      shed: await metricSum(worker.url, 'scoring_shadow_failed_total', 'reason="shed"'),
    };
  } finally {
    await Promise.all([api.stop(), worker.stop()]);
    rmSync(root, { recursive: true, force: true });
  }
}

export function printShadow(result: ShadowResult): void {
  const { no_shadow: a, shadow: b } = result;
  console.log(
    [
      `Shadow at 100% (medians of ${result.rounds.length} interleaved round(s), /predict at c=${result.plan.concurrency}, ${result.plan.stepS} s each)`,
      `  no shadow ${a.rps} req/s, p50 ${a.p50_ms} ms, p99 ${a.p99_ms} ms | shadow ${b.rps} req/s, p50 ${b.p50_ms} ms, p99 ${b.p99_ms} ms`,
      `  p99 ${result.p99_ratio}x, req/s ${result.rps_ratio}x; errors ${result.errors}; records compared ${result.compared}, shed ${result.shed}`,
    ].join('\n'),
  );
}

if (import.meta.main) {
  const { values } = parseArgs({ options: { quick: { type: 'boolean', default: false } } });
  const redis = await startTestRedis();
  try {
    printShadow(await measureShadow(redis, values.quick ? QUICK_SHADOW : FULL_SHADOW, (m) => process.stderr.write(`[shadow] ${m}\n`)));
  } catch (err) {
    killAll();
    throw err;
  } finally {
    await redis.close();
  }
}
