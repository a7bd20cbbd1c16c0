// Shadow scoring in the worker (src/worker/shadow-scoring.ts), with the real fraud versions 1 (the
// GBDT) and 2 (the XGBoost booster) and a real Redis: the comparisons written to the stream are
// the two versions' own outputs compared record by record, as GET /models/{name}/shadow reads
// them; nothing is scored while online work is in hand; past its bound the work is shed and
// counted, never queued without limit; a shadow this worker does not hold is counted, not thrown.
import { after, before, describe, test } from 'node:test';
import assert from 'node:assert/strict';
import { setTimeout as sleep } from 'node:timers/promises';
import { MeterProvider, MetricReader, type ResourceMetrics } from '@opentelemetry/sdk-metrics';
import { generateFraudRecords } from '../../scripts/model/fraud-data.ts';
import { createLogger } from '../../src/shared/logger.ts';
import { shadowStreamKey } from '../../src/shared/keys.ts';
import { ENTRY_RECORDS, entryFields, shadowSummary } from '../../src/shared/shadow-stream.ts';
import { loadModelVersion, type ModelVersion } from '../../src/worker/model-version.ts';
import { OnlineFirst } from '../../src/worker/online-first.ts';
import { MAX_PENDING_RECORDS, ShadowScoring } from '../../src/worker/shadow-scoring.ts';
import { createWorkerMetrics } from '../../src/worker/worker-metrics.ts';
import { prefixedRedis, type PrefixedRedis } from '../helpers/redis-prefix.ts';
import { waitFor } from '../helpers/wait.ts';

const MODELS = new URL('../../models/fraud/', import.meta.url).pathname;

/** Collects the SDK's metrics on demand, as a Prometheus scrape would. */
class Reader extends MetricReader {
  protected async onForceFlush(): Promise<void> {}
  protected async onShutdown(): Promise<void> {}
}

/** The sum of a counter's points whose attributes include `match`. */
function counter(metrics: ResourceMetrics, name: string, match: Record<string, string> = {}): number {
  let sum = 0;
  for (const scope of metrics.scopeMetrics) {
    for (const metric of scope.metrics) {
      if (metric.descriptor.name !== name) continue;
      for (const point of metric.dataPoints) {
        if (Object.entries(match).every(([k, v]) => point.attributes[k] === v)) sum += point.value as number;
      }
    }
  }
  return sum;
}

describe('shadow scoring in the worker', () => {
  let redis: PrefixedRedis;
  let one: ModelVersion;
  let two: ModelVersion;
  const reader = new Reader();
  const metrics = createWorkerMetrics(new MeterProvider({ readers: [reader] }).getMeter('test'));
  const read = async (name: string, match?: Record<string, string>) => counter((await reader.collect()).resourceMetrics, name, match);
  const onlineFirst = new OnlineFirst();
  let shadows: ShadowScoring;

  before(async () => {
    redis = await prefixedRedis('shadow');
    [one, two] = await Promise.all([loadModelVersion(`${MODELS}1`, 'fraud', 1), loadModelVersion(`${MODELS}2`, 'fraud', 2)]);
    shadows = new ShadowScoring({
      // This worker holds version 2 only as a shadow; any other version is not held.
      acquire: (_name, version) =>
        version === 2 ? { model: two.acquire(), release: () => two.release() } : { ok: false, error: 'model_not_found', message: 'not held' },
      redis: redis.client,
      prefix: redis.prefix,
      streamLength: 1000,
      keepRecords: false,
      onlineFirst,
      metrics,
      logger: createLogger('test', 'silent', false),
    });
  });
  after(async () => {
    await shadows.close();
    await Promise.all([one.retire(), two.retire()]);
    await redis.close();
  });

  test("the stream holds each record's comparison of the two versions' own outputs; nothing runs while online work is in hand", async () => {
    const records = generateFraudRecords(77, 600).map((r, i) => ({ ...r, id: `txn-${i}` }));
    const answered = await one.run(records);
    onlineFirst.take();
    // Three batches, as three online batches would hand them over.
    for (let i = 0; i < records.length; i += 200) shadows.add(one, 2, records.slice(i, i + 200), answered.slice(i, i + 200));
    await sleep(50);
    assert.equal(shadows.waitingRecords, 600, 'held back while online work is in hand');
    assert.equal(await redis.client.exists(shadowStreamKey(redis.prefix, 'fraud')), 0);
    onlineFirst.release();
    await waitFor(async () => (await read('scoring_shadow_compared_total')) === 600, { what: '600 records compared' });
    assert.equal(shadows.waitingRecords, 0);

    const direct = await two.run(records);
    const agreeing = records.filter((_, i) => answered[i]!.decision === direct[i]!.decision).length;
    const differences = records.map((_, i) => Math.abs((answered[i]!.fraud_probability as number) - (direct[i]!.fraud_probability as number)));
    const summary = await shadowSummary(redis.client, redis.prefix, 'fraud', 10_000);
    assert.equal(summary.pairs.length, 1);
    const pair = summary.pairs[0]!;
    assert.equal(pair.compared, 600);
    assert.equal(pair.agreement, agreeing / 600);
    assert.ok(Math.abs(pair.mean_difference! - differences.reduce((a, b) => a + b, 0) / 600) < 1e-12);
    assert.equal(await read('scoring_shadow_agreed_total', { shadow_version: '2' }), agreeing);

    // Record ids are kept, their contents are not.
    const [first] = await redis.client.xrange(shadowStreamKey(redis.prefix, 'fraud'), '-', '+', 'COUNT', 1);
    const entry = entryFields(first![1]);
    assert.equal(JSON.parse(entry.ids!)[0], 'txn-0');
    assert.equal(entry.records, undefined);

    // A window smaller than what the stream holds reads the newest records only.
    assert.equal((await shadowSummary(redis.client, redis.prefix, 'fraud', 250)).pairs[0]!.compared, 250);
  });

  test('past MAX_PENDING_RECORDS the records are shed and counted; a shadow not held here is counted, not thrown; the stream keeps the newest records it is set to', async () => {
    const records = generateFraudRecords(78, 1000);
    const answered = await one.run(records);
    onlineFirst.take();
    shadows.add(one, 7, records.slice(0, 5), answered.slice(0, 5));
    while (shadows.waitingRecords < MAX_PENDING_RECORDS) {
      const n = Math.min(records.length, MAX_PENDING_RECORDS - shadows.waitingRecords);
      shadows.add(one, 2, records.slice(0, n), answered.slice(0, n));
    }
    shadows.add(one, 2, records.slice(0, 10), answered.slice(0, 10));
    assert.equal(shadows.waitingRecords, MAX_PENDING_RECORDS);
    assert.equal(await read('scoring_shadow_failed_total', { reason: 'shed' }), 10);
    onlineFirst.release();
    await waitFor(async () => (await read('scoring_shadow_failed_total', { reason: 'shadow_not_held', shadow_version: '7' })) === 5, {
      what: 'the 5 records for an unheld shadow counted',
    });
    await waitFor(async () => shadows.waitingRecords === 0, { what: 'the backlog scored' });
    // Everything not shed and held here: the backlog less the 5 records for version 7.
    await waitFor(async () => (await read('scoring_shadow_compared_total')) === 600 + MAX_PENDING_RECORDS - 5, { what: 'the backlog compared' });
    // The stream is trimmed by records: the newest 1000 (streamLength) at least, plus at most one entry's worth.
    const kept = (await shadowSummary(redis.client, redis.prefix, 'fraud', 1_000_000)).pairs.reduce((n, p) => n + p.compared, 0);
    assert.ok(kept >= 1000 && kept < 1000 + ENTRY_RECORDS, `${kept} records kept`);
  });
});
