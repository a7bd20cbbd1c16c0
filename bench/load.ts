// Closed-loop HTTP load from this process with autocannon: `concurrency` connections, each
// sending its next request when the previous one is answered. Latency is taken from
// autocannon's per-response event (fractional ms) rather than its histogram, which keeps whole
// milliseconds only and would hide the difference between 0.6 and 1.4 ms.
import autocannon, { type AutocannonRequest } from 'autocannon';

export type LoadOptions = {
  url: string;
  concurrency: number;
  durationS: number;
  /** Bodies cycled through per connection (prebuilt once, so building them costs nothing under load). */
  bodies: string[];
};

export type LoadResult = {
  concurrency: number;
  seconds: number;
  /** 2xx responses per second. */
  rps: number;
  ok: number;
  p50_ms: number;
  p90_ms: number;
  p99_ms: number;
  max_ms: number;
  /** Non-2xx responses plus connection errors and timeouts. */
  errors: number;
  status_codes: Record<string, number>;
};

/** Requests per connection past which the load generator builds no more variants. */
const MAX_VARIANTS = 64;

export async function runLoad(options: LoadOptions): Promise<LoadResult> {
  const target = new URL(options.url);
  const requests: AutocannonRequest[] = options.bodies.slice(0, MAX_VARIANTS).map((body) => ({
    method: 'POST',
    path: target.pathname + target.search,
    headers: { 'content-type': 'application/json' },
    body,
  }));
  const base = {
    url: options.url,
    connections: options.concurrency,
    pipelining: 1,
    timeout: 10,
    requests,
  };
  const latencies: number[] = [];
  const started = performance.now();
  const instance = autocannon({ ...base, duration: options.durationS });
  instance.on('response', (_client: unknown, statusCode: number, _bytes: number, responseTime: number) => {
    if (statusCode >= 200 && statusCode < 300) latencies.push(responseTime);
  });
  const result = await instance;
  const seconds = (performance.now() - started) / 1000;

  const statusCodes: Record<string, number> = {};
  for (const [code, stat] of Object.entries(result.statusCodeStats ?? {})) statusCodes[code] = stat.count;
  return loadResult(options.concurrency, seconds, latencies, result.non2xx + result.errors + result.timeouts, statusCodes);
}

/** A step's figures from the latencies of its successful calls (sorted here) and its failures. */
export function loadResult(
  concurrency: number,
  seconds: number,
  latencies: number[],
  errors: number,
  statusCodes: Record<string, number>,
): LoadResult {
  latencies.sort((a, b) => a - b);
  return {
    concurrency,
    seconds: round(seconds, 2),
    rps: round(latencies.length / seconds, 1),
    ok: latencies.length,
    p50_ms: round(percentile(latencies, 0.5), 3),
    p90_ms: round(percentile(latencies, 0.9), 3),
    p99_ms: round(percentile(latencies, 0.99), 3),
    max_ms: round(latencies.at(-1) ?? 0, 3),
    errors,
    status_codes: statusCodes,
  };
}

/** The middle value (the mean of the two middle ones for an even count); NaN for none. */
export function median(values: readonly number[]): number {
  if (values.length === 0) return Number.NaN;
  const sorted = [...values].sort((a, b) => a - b);
  const mid = sorted.length >> 1;
  return sorted.length % 2 === 1 ? sorted[mid]! : (sorted[mid - 1]! + sorted[mid]!) / 2;
}

/** Nearest-rank percentile of sorted values. */
export function percentile(sorted: number[], q: number): number {
  if (sorted.length === 0) return 0;
  return sorted[Math.min(sorted.length - 1, Math.ceil(q * sorted.length) - 1)]!;
}

export function round(value: number, digits: number): number {
  const f = 10 ** digits;
  return Math.round(value * f) / f;
}
