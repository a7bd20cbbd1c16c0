// One 1,000,000-record bulk job end to end on a private Redis, one api and one worker: records/s
// from the first byte of POST /jobs to the last byte of the NDJSON results, and the api's peak
// RSS (VmHWM) over the whole run, and what the job cost Redis (CPU, commands, bytes, memory
// held afterwards), for docs/scaling.md. Usage: node scripts/bulk-measure.ts [records] [chunk size] [workers]
import { startTestRedis } from '../test/helpers/redis-server.ts';
import { startApi, startWorker } from '../test/helpers/processes.ts';
import { buildNdjson, runBulk } from '../bench/bulk.ts';
import { statusMb } from '../bench/process-stats.ts';

/** Redis's own counters (INFO), so a run's cost is the difference of two readings. */
async function redisCounters(client: { info: (section: string) => Promise<string> }) {
  const text = (await client.info('stats')) + (await client.info('cpu')) + (await client.info('memory'));
  const n = (field: string) => Number(new RegExp(`^${field}:(\\S+)`, 'm').exec(text)?.[1] ?? NaN);
  return {
    cpuS: n('used_cpu_sys') + n('used_cpu_user'),
    commands: n('total_commands_processed'),
    netIn: n('total_net_input_bytes'),
    netOut: n('total_net_output_bytes'),
    usedMemory: n('used_memory'),
    usedMemoryPeak: n('used_memory_peak'),
  };
}

const records = Number(process.argv[2] ?? 1_000_000);
const chunkSize = process.argv[3] ?? '10000';
const workerCount = Number(process.argv[4] ?? 1);
const redis = await startTestRedis();
const env = { REDIS_URL: redis.url, QUEUE_PREFIX: 'measure', BULK_CHUNK_SIZE: chunkSize, OTEL_SDK_DISABLED: 'true' };
const api = await startApi(env);
const workers = await Promise.all(Array.from({ length: workerCount }, () => startWorker(env)));
try {
  const body = buildNdjson(records);
  const redisBefore = await redisCounters(redis.client);
  const apiBefore = statusMb(api.proc.pid!, 'VmHWM');
  // /predict, one record every 50 ms, while the job runs: the online path must keep its latency.
  const latencies: number[] = [];
  let running = true;
  const probe = (async () => {
    const one = JSON.stringify({
      transaction_amount: 42,
      merchant_category: 'grocery',
      card_present: true,
      hour_of_day: 12,
      days_since_last_transaction: 1,
    });
    while (running) {
      const t = performance.now();
      const res = await fetch(`${api.url}/predict`, { method: 'POST', headers: { 'content-type': 'application/json' }, body: one });
      await res.text();
      if (res.ok) latencies.push(performance.now() - t);
      await new Promise((r) => setTimeout(r, 50));
    }
  })();
  // The api's high-water mark as each phase ends: which phase holds the peak.
  const apiPeakByPhase: Record<string, string | undefined> = {};
  const outcome = await runBulk(api.url, body, records, 600_000, (phase) => {
    apiPeakByPhase[phase] = statusMb(api.proc.pid!, 'VmHWM')?.toFixed(1);
  });
  running = false;
  await probe;
  latencies.sort((a, b) => a - b);
  const pct = (q: number) => latencies[Math.min(latencies.length - 1, Math.floor(q * latencies.length))]?.toFixed(1);
  const apiPeak = statusMb(api.proc.pid!, 'VmHWM');
  const workerPeak = Math.max(...workers.map((w) => statusMb(w.proc.pid!, 'VmHWM') ?? 0));
  const redisAfter = await redisCounters(redis.client);
  console.log(
    JSON.stringify(
      {
        ...outcome,
        chunk_size: Number(chunkSize),
        workers: workerCount,
        api_peak_rss_mb_before: apiBefore?.toFixed(1),
        api_peak_rss_mb: apiPeak?.toFixed(1),
        api_peak_rss_mb_by_phase: apiPeakByPhase,
        worker_peak_rss_mb: workerPeak?.toFixed(1),
        predict_during_job_ms: { n: latencies.length, p50: pct(0.5), p99: pct(0.99), max: latencies.at(-1)?.toFixed(1) },
        // Includes the /predict probe's calls (about 60 commands each at one call at a time).
        redis: {
          cpu_s: +(redisAfter.cpuS - redisBefore.cpuS).toFixed(3),
          commands: redisAfter.commands - redisBefore.commands,
          net_in_bytes: redisAfter.netIn - redisBefore.netIn,
          net_out_bytes: redisAfter.netOut - redisBefore.netOut,
          // What the job's results (and state) hold until RESULT_TTL_SECONDS, and the peak while chunks were staged.
          used_memory_after_bytes: redisAfter.usedMemory - redisBefore.usedMemory,
          used_memory_peak_bytes: redisAfter.usedMemoryPeak - redisBefore.usedMemory,
        },
      },
      null,
      2,
    ),
  );
} finally {
  await Promise.all([api.stop(), ...workers.map((w) => w.stop())]);
  await redis.close();
}
