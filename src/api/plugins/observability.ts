// The api's side of the metrics: the route on each HTTP span and on http.server.request.duration,
// the queues' depth by state, bulk records pending, and the autoscaling signal: how long the
// waiting work would take to drain at the rate the workers are scoring now.
//
// The queue gauges are observable: Redis is read when Prometheus scrapes, at most once per
// SAMPLE_MIN_INTERVAL_MS however many scrapers there are, never per request.
import fp from 'fastify-plugin';
import type { Queue } from 'bullmq';
import { context } from '@opentelemetry/api';
import { getRPCMetadata, RPCType } from '@opentelemetry/core';
import type { FastifyInstance } from 'fastify';
import type { Config } from '../../shared/config.ts';
import { recordsScoredKey } from '../../shared/keys.ts';
import { createBulkStore } from '../../shared/bulk-store.ts';
import { QUEUES } from '../../shared/queues.ts';
import { isRedisReady } from '../../shared/redis.ts';
import { HTTP_SERVER_DURATION, type Telemetry } from '../../shared/telemetry.ts';
import { monitorEventLoopStalls } from '../../shared/event-loop-stalls.ts';
import { busyScoringRate, drainSeconds, trimSamples, windowScoringRate, type RateSample } from '../../shared/scoring-rate.ts';

export type ObservabilityOptions = { config: Config; telemetry: Telemetry };

/** Job states that hold work not yet done. BullMQ keeps prioritized and delayed jobs outside the wait list (bullmq#2017). */
const STATES = ['waiting', 'prioritized', 'delayed', 'active'] as const;
const SAMPLE_MIN_INTERVAL_MS = 1000;
/** The scoring rate is measured over this window: long enough to smooth batches, short enough to follow load. */
const RATE_WINDOW_MS = 30_000;
/** Bulk chunk jobs read per sample to sum their records; past it the rest count as full chunks. */
const MAX_CHUNKS_READ = 1000;

type Sample = {
  counts: Record<string, Record<string, number>>;
  bulkRecordsPending: number;
  onlineRecordsWaiting: number;
  drainSeconds: number;
  onlineDrainSeconds: number;
  ratePerSecond: number;
};

async function observabilityPlugin(app: FastifyInstance, { config, telemetry }: ObservabilityOptions) {
  // The route template, not the URL, names the HTTP span and labels the duration histogram.
  // This is what the Fastify instrumentation would add to the HTTP span, without its per-hook spans.
  app.addHook('onRequest', async (request) => {
    const rpc = getRPCMetadata(context.active());
    const route = request.routeOptions.url;
    if (rpc?.type === RPCType.HTTP && route) rpc.route = route;
  });
  if (!telemetry.tracing) {
    // The same histogram the HTTP instrumentation records when tracing is on, same name and
    // labels, for a fraction of its cost (no span, no context per request).
    const duration = telemetry.meter.createHistogram(HTTP_SERVER_DURATION, { description: 'Duration of HTTP server requests.', unit: 's' });
    app.addHook('onResponse', async (request, reply) => {
      const route = request.routeOptions.url;
      if (route === '/metrics' || route === '/health' || route === '/ready') return;
      duration.record(reply.elapsedTime / 1000, {
        'http.request.method': request.method,
        'http.response.status_code': reply.statusCode,
        ...(route ? { 'http.route': route } : {}),
      });
    });
  }

  // A bulk upload is parsed on this loop: its stalls are what an online call waits behind.
  const stalls = monitorEventLoopStalls(telemetry.meter);
  app.addHook('onClose', async () => stalls.stop());

  const { prefix } = config.redis;
  const { queues } = app;
  const scoredKey = recordsScoredKey(prefix);
  const rateSamples: RateSample[] = [];
  let lastBusyRate: number | undefined;
  let last: { at: number; sample: Promise<Sample | undefined> } | undefined;

  async function bulkRecordsPending(jobs: number): Promise<number> {
    if (jobs === 0) return 0;
    const perShard = Math.ceil(MAX_CHUNKS_READ / queues.bulk.shards.length);
    const pending = (await Promise.all(queues.bulk.shards.map((queue) => queue.getJobs([...STATES], 0, perShard - 1)))).flat();
    let records = 0;
    // A job removed between listing and reading comes back undefined.
    for (const job of pending) records += job ? Number(job.data.count) : 0;
    return records + Math.max(0, jobs - pending.length) * config.bulk.chunkSize;
  }

  /** A queue's job counts by state, added up over its shards. */
  async function jobCounts(shards: readonly Queue[]) {
    const total: Record<string, number> = {};
    for (const counts of await Promise.all(shards.map((queue) => queue.getJobCounts(...STATES)))) {
      for (const state of STATES) total[state] = (total[state] ?? 0) + (counts[state] ?? 0);
    }
    return total;
  }

  async function takeSample(): Promise<Sample | undefined> {
    if (!isRedisReady(app.redis)) return undefined;
    const counts: Sample['counts'] = {};
    // Keyed by the queue's catalog name, the metrics' queue label: one per model version the
    // dispatcher has a producer for (every version a live worker holds), and bulk; a queue's shards add up.
    let onlineJobs = 0;
    for (const { definition, shards } of app.online.producers) {
      const byState = await jobCounts(shards);
      counts[definition.name] = byState;
      onlineJobs += STATES.reduce((n, s) => n + (byState[s] ?? 0), 0);
    }
    counts[queues.bulk.definition.name] = await jobCounts(queues.bulk.shards);
    const scored = Number((await app.redis.get(scoredKey)) ?? 0);
    const now = Date.now();

    const bulk = counts[QUEUES.bulk.name]!;
    const bulkPending = await bulkRecordsPending(STATES.reduce((n, s) => n + (bulk[s] ?? 0), 0));
    const onlineRecordsWaiting = onlineJobs * app.online.meanRecordsPerJob;
    const backlog = onlineRecordsWaiting + bulkPending;

    rateSamples.push({ at: now, scored, waiting: backlog });
    trimSamples(rateSamples, now, RATE_WINDOW_MS);
    const ratePerSecond = windowScoringRate(rateSamples, now, RATE_WINDOW_MS) ?? 0;
    const busyRate = busyScoringRate(rateSamples, now, RATE_WINDOW_MS);
    const drain = drainSeconds(backlog, busyRate, lastBusyRate);
    // The online pool's signal: the online calls alone, at the same measured rate (online work goes
    // first in a worker that holds both, and a pool of its own scores nothing else).
    const onlineDrain = drainSeconds(onlineRecordsWaiting, busyRate, lastBusyRate);
    if (busyRate !== undefined && busyRate > 0) lastBusyRate = busyRate;
    return { counts, bulkRecordsPending: bulkPending, onlineRecordsWaiting, drainSeconds: drain, onlineDrainSeconds: onlineDrain, ratePerSecond };
  }

  function sample(): Promise<Sample | undefined> {
    const now = Date.now();
    if (!last || now - last.at >= SAMPLE_MIN_INTERVAL_MS) {
      last = { at: now, sample: takeSample().catch((err: unknown) => (app.log.debug({ err }, 'queue metrics sample failed'), undefined)) };
    }
    return last.sample;
  }

  const { meter } = telemetry;
  const depth = meter.createObservableGauge('scoring_queue_jobs', {
    description: 'Jobs in each queue by state (waiting, prioritized, delayed, active)',
  });
  const bulkPending = meter.createObservableGauge('scoring_bulk_records_pending', {
    description: 'Records of bulk chunks not yet scored (queued, delayed or in progress)',
  });
  const drain = meter.createObservableGauge('scoring_backlog_drain_seconds', {
    description: 'Seconds the queued records (online and bulk) would take to drain at the measured scoring rate; the autoscaling signal',
    unit: 's',
  });
  const onlineDrain = meter.createObservableGauge('scoring_online_drain_seconds', {
    description: 'Seconds the queued online calls alone would take to drain at the measured scoring rate; the online pool’s autoscaling signal',
    unit: 's',
  });
  const rate = meter.createObservableGauge('scoring_records_scored_rate', {
    description: `Records scored per second by all workers, over the last ${RATE_WINDOW_MS / 1000} s`,
  });
  // Per API key (its hash, as jobs record it): what TENANT_MAX_QUEUED_RECORDS caps. Read at each
  // scrape: one read per owner with work waiting and per job of theirs, nothing per request.
  const bulkStore = createBulkStore(app.redis, prefix);
  meter
    .createObservableGauge('scoring_tenant_queued_records', {
      description: 'Records of bulk jobs not yet scored, per owner (a hash of the API key; anonymous without API_KEYS)',
    })
    .addCallback(async (result) => {
      if (!isRedisReady(app.redis)) return;
      const backlogs = await bulkStore.backlogs().catch((err: unknown) => (app.log.debug({ err }, 'tenant backlog read failed'), undefined));
      for (const [owner, backlog] of backlogs ?? []) result.observe(backlog.records, { owner });
    });
  meter.addBatchObservableCallback(
    async (result) => {
      const s = await sample();
      if (!s) return;
      for (const [queue, byState] of Object.entries(s.counts)) {
        for (const state of STATES) result.observe(depth, byState[state] ?? 0, { queue, state });
      }
      result.observe(bulkPending, s.bulkRecordsPending);
      result.observe(drain, s.drainSeconds);
      result.observe(onlineDrain, s.onlineDrainSeconds);
      result.observe(rate, s.ratePerSecond);
    },
    [depth, bulkPending, drain, onlineDrain, rate],
  );
}

export default fp(observabilityPlugin, { name: 'observability', dependencies: ['queues', 'online-dispatcher'] });
