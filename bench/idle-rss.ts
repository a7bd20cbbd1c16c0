// The api's resident memory at idle (issue 21): a fresh api and worker on a private queue prefix,
// five seconds after the api is ready, three times; the median. Measured with API_KEYS set (the
// admin board off, as a deployment with keys and no admin key runs) and without (an open api,
// which also serves the board). Node's compile cache (NODE_COMPILE_CACHE, set by ./dev) decides
// whether the TypeScript stripper is resident: the row says whether it was set.
// Runs alone as `node bench/idle-rss.ts`, or as part of `npm run bench`.
import { startTestRedis, type TestRedis } from '../test/helpers/redis-server.ts';
import { median, round } from './load.ts';
import { startServer } from './processes.ts';
import { statusMb } from './process-stats.ts';

const IDLE_MS = 5000;
const RUNS = 3;

export type IdleRssResult = {
  compile_cache: boolean;
  /** Median MB with API_KEYS set, and each run's. */
  with_keys_mb: number;
  with_keys_runs: number[];
  open_mb: number;
  open_runs: number[];
};

async function idleRss(redis: TestRedis, prefix: string, extra: Record<string, string>): Promise<number> {
  const env = { REDIS_URL: redis.url, QUEUE_PREFIX: prefix, LOG_LEVEL: 'warn', HOST: '127.0.0.1', ...extra };
  const [api, worker] = await Promise.all([startServer('api', { name: 'idle-api', env }), startServer('worker', { name: 'idle-worker', env })]);
  try {
    await new Promise((r) => setTimeout(r, IDLE_MS));
    return round(statusMb(api.pid, 'VmRSS')!, 1);
  } finally {
    await Promise.all([api.stop(), worker.stop()]);
  }
}

export async function measureIdleRss(redis: TestRedis, log: (m: string) => void): Promise<IdleRssResult> {
  const withKeys: number[] = [];
  const open: number[] = [];
  for (let i = 0; i < RUNS; i++) {
    withKeys.push(await idleRss(redis, `bench-idle-keys-${i}`, { API_KEYS: 'bench-idle-key-0123456789' }));
    open.push(await idleRss(redis, `bench-idle-open-${i}`, {}));
  }
  const result = {
    compile_cache: Boolean(process.env.NODE_COMPILE_CACHE),
    with_keys_mb: median(withKeys),
    with_keys_runs: withKeys,
    open_mb: median(open),
    open_runs: open,
  };
  log(`api idle RSS: ${result.with_keys_mb} MB with API_KEYS, ${result.open_mb} MB open (compile cache ${result.compile_cache ? 'on' : 'off'})`);
  return result;
}

export function printIdleRss(result: IdleRssResult): void {
  console.log(
    `Api idle RSS (median of ${RUNS}, ${IDLE_MS / 1000} s after start; compile cache ${result.compile_cache ? 'on' : 'off'}): ` +
      `${result.with_keys_mb} MB with API_KEYS set (${result.with_keys_runs.join(', ')}), ` +
      `${result.open_mb} MB open, with the admin board (${result.open_runs.join(', ')})`,
  );
}

if (import.meta.main) {
  const redis = await startTestRedis();
  try {
    printIdleRss(await measureIdleRss(redis, (m) => process.stderr.write(`[idle-rss] ${m}\n`)));
  } finally {
    await redis.close();
  }
}
