// deploy/grafana/scoring-service.json may name only what the service exports. Real api and worker
// processes serve some traffic (online, an error, a bulk job); the metric names and labels of
// their /metrics are the truth every query of the dashboard is checked against.
import { after, before, test } from 'node:test';
import assert from 'node:assert/strict';
import { readFileSync } from 'node:fs';
import { fileURLToPath } from 'node:url';
import { startTestRedis, type TestRedis } from '../helpers/redis-server.ts';
import { startApi, startWorker, type ServiceProcess } from '../helpers/processes.ts';
import { waitFor } from '../helpers/wait.ts';
import { generateFraudRecords } from '../../scripts/model/fraud-data.ts';
import { ScoringClient, ScoringError } from '../../src/client/index.ts';
import { writeFileSync, mkdtempSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';

const DASHBOARD = fileURLToPath(new URL('../../deploy/grafana/scoring-service.json', import.meta.url));

/** Labels Prometheus adds at scrape time (deploy/prometheus.yml), and histogram buckets' le. */
const SCRAPE_LABELS = new Set(['job', 'instance', 'le']);

/** PromQL words that are not metric names. */
const PROMQL = new Set(
  'sum avg min max count rate irate increase histogram_quantile by without on ignoring group_left group_right and or unless bool offset topk bottomk quantile abs clamp_min clamp_max'.split(
    ' ',
  ),
);

type Exported = Map<string, Set<string>>;

/** Sample name → its label names, from Prometheus text. */
function parseExposition(text: string, into: Exported): void {
  for (const line of text.split('\n')) {
    const match = /^([a-zA-Z_:][a-zA-Z0-9_:]*)(?:\{([^}]*)\})? /.exec(line);
    if (!match) continue;
    const labels = into.get(match[1]!) ?? new Set<string>();
    for (const pair of (match[2] ?? '').matchAll(/([a-zA-Z_][a-zA-Z0-9_]*)="/g)) labels.add(pair[1]!);
    into.set(match[1]!, labels);
  }
}

type Query = { metrics: { name: string; matcherLabels: string[] }[]; groupingLabels: string[] };

/** The metrics a query selects (with the labels its matchers use) and the labels it groups by. */
export function parseQuery(expr: string): Query {
  const groupingLabels = [...expr.matchAll(/\b(?:by|without)\s*\(([^)]*)\)/g)].flatMap((m) =>
    m[1]!
      .split(',')
      .map((l) => l.trim())
      .filter(Boolean),
  );
  const metrics: Query['metrics'] = [];
  const bare = expr
    .replace(/\b(?:by|without)\s*\([^)]*\)/g, ' ')
    .replace(/\[[^\]]*\]/g, ' ')
    .replace(/"[^"]*"/g, '""');
  for (const m of bare.matchAll(/([a-zA-Z_:][a-zA-Z0-9_:]*)\s*(\{[^}]*\})?/g)) {
    const name = m[1]!;
    if (PROMQL.has(name) || /^\d/.test(name)) continue;
    const matcherLabels = [...(m[2] ?? '').matchAll(/([a-zA-Z_][a-zA-Z0-9_]*)\s*[=!]~?/g)].map((l) => l[1]!);
    metrics.push({ name, matcherLabels });
  }
  return { metrics, groupingLabels };
}

let redis: TestRedis;
let api: ServiceProcess;
let worker: ServiceProcess;
let dir: string;

before(async () => {
  redis = await startTestRedis();
  const env = { REDIS_URL: redis.url, QUEUE_PREFIX: 'dashboard', BULK_CHUNK_SIZE: '2000' };
  [api, worker] = await Promise.all([startApi(env), startWorker(env)]);
  dir = mkdtempSync(join(tmpdir(), 'scoring-dashboard-'));
});

after(async () => {
  await Promise.all([api?.stop(), worker?.stop()]);
  await redis?.close();
  rmSync(dir, { recursive: true, force: true });
});

test('the Grafana dashboard names only metrics and labels the api and the worker export', async () => {
  const client = new ScoringClient({ url: api.url });
  const records = generateFraudRecords(99, 20_000);
  await client.predict(records[0]!);
  await assert.rejects(client.predict({ ...records[1]!, hour_of_day: 99 }), (err) => err instanceof ScoringError && err.status === 400);
  const file = join(dir, 'records.ndjson');
  writeFileSync(file, records.map((r) => JSON.stringify(r)).join('\n') + '\n');
  const { job_id } = await client.submitJob(file);
  await waitFor(async () => (await client.jobStatus(job_id)).status === 'completed', { timeoutMs: 60_000, what: 'the bulk job' });

  const exported: Exported = new Map();
  for (const base of [api.url, worker.url]) parseExposition(await (await fetch(`${base}/metrics`)).text(), exported);

  const dashboard = JSON.parse(readFileSync(DASHBOARD, 'utf8')) as { panels: { title: string; targets: { expr: string }[] }[] };
  const problems: string[] = [];
  const used = new Set<string>();
  for (const panel of dashboard.panels) {
    for (const { expr } of panel.targets) {
      const { metrics, groupingLabels } = parseQuery(expr);
      assert.ok(metrics.length > 0, `"${panel.title}" selects a metric: ${expr}`);
      const labelsOfQuery = new Set<string>(SCRAPE_LABELS);
      for (const { name, matcherLabels } of metrics) {
        used.add(name);
        const labels = exported.get(name);
        if (!labels) {
          problems.push(`"${panel.title}": ${name} is not exported`);
          continue;
        }
        for (const l of labels) labelsOfQuery.add(l);
        for (const l of matcherLabels) if (!labels.has(l)) problems.push(`"${panel.title}": ${name} has no label ${l}`);
      }
      for (const l of groupingLabels) if (!labelsOfQuery.has(l)) problems.push(`"${panel.title}": no metric of "${expr}" has a label ${l}`);
    }
  }
  assert.deepEqual(problems, []);

  // The panels the operator needs: traffic, latency, errors, batching, drain time, queue depth, the runtime.
  for (const needed of [
    'http_server_request_duration_seconds_count',
    'http_server_request_duration_seconds_bucket',
    'scoring_batch_records_sum',
    'scoring_backlog_drain_seconds',
    'scoring_queue_jobs',
    'nodejs_eventloop_delay_p99',
    'v8js_memory_heap_used',
    'v8js_gc_duration_seconds_sum',
    'process_cpu_time_seconds_total',
    'process_memory_usage_bytes',
  ]) {
    assert.ok(used.has(needed), `the dashboard shows ${needed}`);
  }
});

test('the query parser finds metrics, matcher labels and grouping labels (and not PromQL words)', () => {
  const q = parseQuery('histogram_quantile(0.99, sum by (le, http_route) (rate(http_x_bucket{code=~"4..|5.."}[$__rate_interval]))) / max(y)');
  assert.deepEqual(q.metrics, [
    { name: 'http_x_bucket', matcherLabels: ['code'] },
    { name: 'y', matcherLabels: [] },
  ]);
  assert.deepEqual(q.groupingLabels, ['le', 'http_route']);
});
