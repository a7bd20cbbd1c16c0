// Drains the online queue of one model version: every job a worker holds joins the batcher, one
// session.run scores all their calls, and the replies go back on each api's own channel. A batch
// is handled in three steps: partition (a call whose caller has already had its 504 is not
// scored; it is counted as expired), score (one session.run, under a lease on the version, so a
// retired session closes only after the batch), reply (one PUBLISH per api process). When the
// model throws, every live call of the batch is answered at once with a model_error reply rather
// than left to time out; a call whose own records came out non-finite fails alone.
//
// Every version answers the same way: per record, each output by name (ModelVersion.run; a
// record-encoded version's probability under its manifest's field, plus its decision).
import type { Tracer, Span } from '@opentelemetry/api';
import { callRows, predictQueue, type OnlineCall, type OnlineReply, type PredictJob, type PredictOutcome } from '../shared/queues.ts';
import { createConsumers, type Consumer } from '../shared/queue-clients.ts';
import type { RedisClient } from '../shared/redis.ts';
import { publishReplies } from '../shared/reply-channel.ts';
import type { LogSink } from '../shared/logger.ts';
import type { SignatureRecord } from '../shared/model-signature.ts';
import { recordsScoredKey } from '../shared/keys.ts';
import { recordsOf, unpackColumns, type Columns } from '../shared/tensor-columns.ts';
import type { InputPart } from './tensor-codec.ts';
import { Batcher } from './batcher.ts';
import type { ModelLease, ResolveFailure } from './model-repository.ts';
import type { ModelVersion } from './model-version.ts';
import type { WorkerMetrics } from './worker-metrics.ts';
import type { OnlineFirst } from './online-first.ts';
import type { ShadowScoring } from './shadow-scoring.ts';
import { recordCallSpans, recordInferenceSpan, startBatchSpan, type ScoredBy, type TracedCall } from './batch-spans.ts';

export type PredictConsumerOptions = {
  /** Blocking connection for BullMQ; it must have maxRetriesPerRequest null. */
  connection: RedisClient;
  /** Plain connection the replies are published on. */
  publisher: RedisClient;
  prefix: string;
  /** Shards of every online queue (ONLINE_QUEUE_SHARDS); the worker drains every shard of the version's queue. */
  shards: number;
  modelName: string;
  version: number;
  /** A lease on the version's current session (a reload may replace it), or why it is gone. */
  acquire: () => ModelLease | ResolveFailure;
  maxBatchSize: number;
  maxBatchDelayMs: number;
  concurrency: number;
  lockDurationMs: number;
  stalledIntervalMs: number;
  /** Held from a job's pick until its batch is scored: bulk slices wait meanwhile (online-first.ts). */
  onlineFirst: OnlineFirst;
  /** Scores the calls that name a shadow version again with it, once they are answered. */
  shadows: ShadowScoring;
  metrics: WorkerMetrics;
  logger: LogSink;
  /** OpenTelemetry's no-op tracer when spans are not exported (batch-spans.ts). */
  tracer: Tracer;
};

/** expired is set by the batch: every call of the job had passed its deadline. scored: its OnlineFirst hold is released. */
type Arrival = { job: PredictJob; pickedAt: number; expired?: boolean; scored?: boolean };
type LiveCall = { arrival: Arrival; call: OnlineCall };

/** What one session.run gave for a batch, in call order (with each call's input as it was fed), or why it failed. */
type Scored =
  | { ok: true; outputs: Record<string, unknown>[]; parts: InputPart[]; inferenceMs: number; records: number }
  | { ok: false; code: 'model_error' | 'model_not_found' | 'model_unavailable'; message: string; inferenceMs: number; records: number };

const traced = ({ arrival, call }: LiveCall): TracedCall => ({ call, enqueuedAt: arrival.job.enqueued_at, pickedAt: arrival.pickedAt });

/** Splits a batch into the calls still awaited and those whose deadline has passed. */
export function partitionByDeadline(arrivals: Arrival[], now: number): { live: LiveCall[]; expired: LiveCall[] } {
  const live: LiveCall[] = [];
  const expired: LiveCall[] = [];
  for (const arrival of arrivals) {
    let jobLive = 0;
    for (const call of arrival.job.calls) {
      if (call.deadline <= now) expired.push({ arrival, call });
      else {
        live.push({ arrival, call });
        jobLive++;
      }
    }
    arrival.expired = jobLive === 0;
  }
  return { live, expired };
}

/**
 * The message of a failed session.run for the callers: model and failure named, no stack and
 * not the runtime's own text, which may quote input values, and a batch holds the records of
 * many callers (and API keys). The worker's log has the runtime's message.
 */
function modelFailure(by: ScoredBy, records: number): string {
  return `model ${by.modelName} version ${by.modelVersion} failed: inference threw on a batch of ${records} records`;
}

const scoredBy = (model: ModelVersion): ScoredBy => ({ modelName: model.name, modelVersion: model.displayVersion });

/** Where a record's outputs hold a number that is not finite (NaN, ±Infinity): the path to it, else undefined. */
export function nonFinite(value: unknown, path = ''): string | undefined {
  if (typeof value === 'number') return Number.isFinite(value) ? undefined : path || 'value';
  if (value === null || typeof value !== 'object') return undefined;
  for (const [key, v] of Object.entries(value)) {
    const at = nonFinite(v, path ? `${path}.${key}` : key);
    if (at !== undefined) return at;
  }
  return undefined;
}

export function startPredictConsumer(options: PredictConsumerOptions): Consumer<PredictOutcome, 'predict'>[] {
  const { metrics, publisher, tracer, logger } = options;
  const scoredKey = recordsScoredKey(options.prefix);
  const definition = predictQueue(options.modelName, options.version);
  const labels = { model_name: options.modelName, model_version: String(options.version) };

  async function score(model: ModelVersion, live: LiveCall[], batchSpan: Span): Promise<Scored> {
    const records = live.reduce((n, { call }) => n + callRows(call), 0);
    const by = scoredBy(model);
    const startedAt = Date.now();
    const started = performance.now();
    try {
      // A protocol call's columns feed the session as they are; no record is built for them.
      const parts = live.map(({ call }): InputPart => (call.records as SignatureRecord[] | undefined) ?? unpackColumns(call.columns!.packed));
      const outputs = await model.runParts(parts);
      model.observe(outputs);
      const inferenceMs = performance.now() - started;
      recordInferenceSpan(tracer, batchSpan, startedAt, startedAt + inferenceMs, by);
      metrics.batchRecords.record(records, labels);
      metrics.inferenceDuration.record(inferenceMs / 1000, labels);
      return { ok: true, outputs, parts, inferenceMs, records };
    } catch (err) {
      metrics.modelErrors.add(1, { kind: 'online', ...labels });
      logger.error({ err, ...labels, records, calls: live.length }, 'model failed on an online batch');
      return {
        ok: false,
        code: 'model_error',
        message: modelFailure(by, records),
        inferenceMs: performance.now() - started,
        records,
      };
    }
  }

  /** Calls answered with outputs that name a shadow version: what shadow scoring takes once the replies are out. */
  type Shadowed = { shadow: number; records: Record<string, unknown>[]; outputs: Record<string, unknown>[] };

  /** One reply per live call; returns the replies by api channel, the records actually scored, and the shadowed calls. */
  function buildReplies(
    model: ModelVersion | undefined,
    live: LiveCall[],
    scored: Scored,
    batchStart: number,
  ): { byChannel: Map<string, OnlineReply[]>; recordsScored: number; shadowed: Shadowed[] } {
    const byChannel = new Map<string, OnlineReply[]>();
    const shadowed: Shadowed[] = [];
    let offset = 0;
    let recordsScored = 0;
    for (const [at, { arrival, call }] of live.entries()) {
      const n = callRows(call);
      let reply: OnlineReply;
      if (!scored.ok || !model) {
        const failure = scored.ok ? { code: 'model_error' as const, message: 'no model' } : scored;
        reply = { call_id: call.call_id, status: 'error', code: failure.code, message: failure.message };
      } else {
        const outputs = scored.outputs.slice(offset, offset + n);
        const by = scoredBy(model);
        // A call whose own records came out non-finite fails alone; the batch's other calls are answered.
        const bad = outputs.findIndex((o) => nonFinite(o) !== undefined);
        if (bad >= 0) {
          metrics.modelErrors.add(1, { kind: 'record', ...labels });
          reply = {
            call_id: call.call_id,
            status: 'error',
            code: 'model_error',
            message: `model ${by.modelName} version ${by.modelVersion} gave no probability for record ${bad} of the call (its ${nonFinite(outputs[bad])} is not finite)`,
          };
        } else {
          recordsScored += n;
          if (call.shadow !== undefined) {
            // The shadow takes records: a call that came as columns (already unpacked to be scored) becomes them here.
            const part = scored.parts[at]!;
            shadowed.push({ shadow: call.shadow, records: Array.isArray(part) ? part : recordsOf(part as Columns), outputs });
          }
          reply = {
            call_id: call.call_id,
            status: 'outputs',
            outputs,
            model_name: by.modelName,
            model_version: by.modelVersion,
            timings: {
              queue_ms: Math.max(0, arrival.pickedAt - arrival.job.enqueued_at),
              batch_wait_ms: batchStart - arrival.pickedAt,
              inference_ms: scored.inferenceMs,
              batch_records: scored.records,
            },
          };
        }
      }
      offset += n;
      const replies = byChannel.get(arrival.job.reply_to) ?? [];
      replies.push(reply);
      byChannel.set(arrival.job.reply_to, replies);
    }
    return { byChannel, recordsScored, shadowed };
  }

  async function reply(byChannel: Map<string, OnlineReply[]>, recordsScored: number): Promise<void> {
    await Promise.all([
      publishReplies(publisher, byChannel),
      // The scoring rate behind the api's admission and drain-time gauge, sent beside the replies.
      recordsScored > 0 ? publisher.incrby(scoredKey, recordsScored) : undefined,
    ]);
  }

  /** Once scored (or failed), a job no longer holds bulk work back: its reply is I/O. */
  function releaseHolds(arrivals: Arrival[]): void {
    for (const arrival of arrivals) {
      if (arrival.scored) continue;
      arrival.scored = true;
      options.onlineFirst.release();
    }
  }

  async function scoreBatch(arrivals: Arrival[]): Promise<void> {
    try {
      await scoreAndReply(arrivals);
    } finally {
      releaseHolds(arrivals);
    }
  }

  async function scoreAndReply(arrivals: Arrival[]): Promise<void> {
    const batchStart = Date.now();
    for (const arrival of arrivals) metrics.batchWait.record(Math.max(0, batchStart - arrival.pickedAt) / 1000, labels);
    const { live, expired } = partitionByDeadline(arrivals, batchStart);
    for (const call of expired) recordCallSpans(tracer, traced(call), batchStart, undefined, batchStart);
    if (expired.length > 0) metrics.onlineCalls.add(expired.length, { outcome: 'expired', ...labels });
    if (live.length === 0) return;

    const records = live.reduce((n, { call }) => n + callRows(call), 0);
    const batchSpan = startBatchSpan(tracer, live.map(traced), records, batchStart);
    // The lease keeps the session open until this batch has replied, even if the version retires meanwhile.
    const lease = options.acquire();
    try {
      const model = 'model' in lease ? lease.model : undefined;
      const scored: Scored = model
        ? await score(model, live, batchSpan)
        : { ok: false, code: (lease as ResolveFailure).error, message: (lease as ResolveFailure).message, inferenceMs: 0, records };
      releaseHolds(arrivals);
      const { byChannel, recordsScored, shadowed } = buildReplies(model, live, scored, batchStart);
      metrics.recordsScored.add(recordsScored, { kind: 'online', ...labels });
      metrics.onlineCalls.add(live.length, { outcome: scored.ok ? 'scored' : 'failed', ...labels });
      logger.debug({ ...labels, records, calls: live.length, inference_ms: scored.inferenceMs }, 'batch done');
      await reply(byChannel, recordsScored);
      // Only once every caller of the batch has its answer.
      for (const s of shadowed) options.shadows.add(model!, s.shadow, s.records, s.outputs);

      const end = Date.now();
      const batch = model ? { span: batchSpan, records, ...scoredBy(model) } : undefined;
      for (const call of live) recordCallSpans(tracer, traced(call), batchStart, batch, end);
      batchSpan.end(end);
    } finally {
      if ('model' in lease) lease.release();
    }
  }

  const batcher = new Batcher<Arrival>({
    maxBatchSize: options.maxBatchSize,
    maxDelayMs: options.maxBatchDelayMs,
    sizeOf: (a) => a.job.calls.reduce((n, c) => n + callRows(c), 0),
    run: scoreBatch,
  });

  // One BullMQ Worker per shard of the version's queue, all feeding the one batcher: a batch mixes
  // the shards' calls, never two versions'.
  const workers = createConsumers(
    definition,
    async (job): Promise<PredictOutcome> => {
      const pickedAt = Date.now();
      metrics.queueWait.record(Math.max(0, pickedAt - job.enqueued_at) / 1000, labels);
      const arrival: Arrival = { job, pickedAt };
      options.onlineFirst.take();
      await batcher.add(arrival);
      return arrival.expired ? 'expired' : 'scored';
    },
    {
      connection: options.connection,
      prefix: options.prefix,
      concurrency: options.concurrency,
      lockDurationMs: options.lockDurationMs,
      stalledIntervalMs: options.stalledIntervalMs,
      shards: options.shards,
    },
  );
  for (const worker of workers) {
    worker.on('error', (err) => logger.warn({ err, queue: worker.name, ...labels }, 'predict worker error'));
    // err, not err.message: the log keeps the stack and the cause.
    worker.on('failed', (job, err) => logger.warn({ job_id: job?.id, queue: worker.name, err, ...labels }, 'predict job failed'));
  }
  return workers;
}
