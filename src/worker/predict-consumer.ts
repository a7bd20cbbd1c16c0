// Drains the online queue: every job a worker holds joins the batcher, one session.run scores
// all their calls, and the replies go back on each api's own channel. A call whose caller has
// already had its 504 (deadline passed) is not scored; it is counted as expired.
import { UnrecoverableError, Worker, type Job } from 'bullmq';
import type { Redis } from 'ioredis';
import { QUEUES, type OnlineReply, type PredictJob } from '../shared/queues.ts';
import type { FraudRecord } from '../shared/schemas/record.ts';
import type { LogSink } from '../shared/logger.ts';
import { Batcher } from './batcher.ts';
import { decide, type Thresholds } from './decide.ts';
import type { ScoringModel } from './model.ts';
import type { WorkerMetrics } from './worker-metrics.ts';
import type { Tracer } from '@opentelemetry/api';
import { recordsScoredKey } from '../shared/keys.ts';
import { recordCallSpans, recordInferenceSpan, startBatchSpan, type TracedCall } from './batch-spans.ts';
import { EXPIRED } from './job-outcomes.ts';

export type PredictConsumerOptions = {
  /** Blocking connection for BullMQ; it must have maxRetriesPerRequest null. */
  connection: Redis;
  /** Plain connection the replies are published on. */
  publisher: Redis;
  prefix: string;
  model: ScoringModel;
  thresholds: Thresholds;
  maxBatchSize: number;
  maxBatchDelayMs: number;
  concurrency: number;
  lockDurationMs: number;
  stalledIntervalMs: number;
  metrics: WorkerMetrics;
  logger: LogSink;
  /** Set when spans are exported (batch-spans.ts). */
  tracer?: Tracer | undefined;
};

/** expired is set by the batch: every call of the job had passed its deadline. */
type Arrival = { job: PredictJob; pickedAt: number; expired?: boolean };

export function startPredictConsumer(options: PredictConsumerOptions): Worker {
  const { model, thresholds, metrics, publisher, tracer } = options;
  const scoredKey = recordsScoredKey(options.prefix);
  const traced = (arrival: Arrival, call: PredictJob['calls'][number]): TracedCall => ({
    call,
    enqueuedAt: arrival.job.enqueued_at,
    pickedAt: arrival.pickedAt,
  });

  async function scoreBatch(arrivals: Arrival[]): Promise<void> {
    const batchStart = Date.now();
    const live: { arrival: Arrival; call: PredictJob['calls'][number] }[] = [];
    let expired = 0;
    for (const arrival of arrivals) {
      let jobLive = 0;
      for (const call of arrival.job.calls) {
        if (call.deadline <= batchStart) {
          expired++;
          if (tracer) recordCallSpans(tracer, traced(arrival, call), batchStart, undefined, batchStart);
        } else {
          live.push({ arrival, call });
          jobLive++;
        }
      }
      arrival.expired = jobLive === 0;
      metrics.batchWait.record(Math.max(0, batchStart - arrival.pickedAt) / 1000);
    }
    if (expired > 0) metrics.onlineCalls.add(expired, { outcome: 'expired' });
    if (live.length === 0) return;

    const records: FraudRecord[] = [];
    for (const { call } of live) for (const r of call.records) records.push(r);
    const batchSpan = tracer && startBatchSpan(tracer, live.map((l) => traced(l.arrival, l.call)), records.length, batchStart);
    const inferenceStartedAt = Date.now();
    const inferenceStart = performance.now();
    const probabilities = await model.score(records);
    const inferenceMs = performance.now() - inferenceStart;
    if (tracer && batchSpan) recordInferenceSpan(tracer, batchSpan, inferenceStartedAt, inferenceStartedAt + inferenceMs, model.version);

    metrics.batchRecords.record(records.length);
    metrics.inferenceDuration.record(inferenceMs / 1000);
    metrics.recordsScored.add(records.length, { kind: 'online' });
    metrics.onlineCalls.add(live.length, { outcome: 'scored' });
    options.logger.debug({ records: records.length, calls: live.length, inference_ms: inferenceMs }, 'batch scored');

    const byChannel = new Map<string, OnlineReply[]>();
    let offset = 0;
    for (const { arrival, call } of live) {
      const n = call.records.length;
      const probs = Array.from(probabilities.subarray(offset, offset + n));
      offset += n;
      const replies = byChannel.get(arrival.job.reply_to) ?? [];
      replies.push({
        call_id: call.call_id,
        status: 'ok',
        probabilities: probs,
        decisions: probs.map((p) => decide(p, thresholds)),
        model_version: model.version,
        timings: {
          queue_ms: Math.max(0, arrival.pickedAt - arrival.job.enqueued_at),
          batch_wait_ms: batchStart - arrival.pickedAt,
          inference_ms: inferenceMs,
          batch_records: records.length,
        },
      });
      byChannel.set(arrival.job.reply_to, replies);
    }
    // One PUBLISH per api process per batch, however many calls it holds.
    const pipeline = publisher.pipeline();
    for (const [channel, replies] of byChannel) pipeline.publish(channel, JSON.stringify({ replies }));
    // The scoring rate behind the api's drain-time gauge; it rides in the same round trip.
    pipeline.incrby(scoredKey, records.length);
    await pipeline.exec();
    if (tracer && batchSpan) {
      const end = Date.now();
      const batch = { span: batchSpan, records: records.length, modelVersion: model.version };
      for (const { arrival, call } of live) recordCallSpans(tracer, traced(arrival, call), batchStart, batch, end);
      batchSpan.end(end);
    }
  }

  const batcher = new Batcher<Arrival>({
    maxBatchSize: options.maxBatchSize,
    maxDelayMs: options.maxBatchDelayMs,
    sizeOf: (a) => a.job.calls.reduce((n, c) => n + c.records.length, 0),
    run: scoreBatch,
  });

  const worker = new Worker(
    QUEUES.predict.name,
    async (job: Job) => {
      const pickedAt = Date.now();
      const parsed = QUEUES.predict.data.safeParse(job.data);
      // Data this worker cannot read will not become readable on a retry (version skew).
      if (!parsed.success) throw new UnrecoverableError(`predict job ${job.id} has bad data: ${parsed.error.message}`);
      metrics.queueWait.record(Math.max(0, pickedAt - parsed.data.enqueued_at) / 1000);
      const arrival: Arrival = { job: parsed.data, pickedAt };
      await batcher.add(arrival);
      return arrival.expired ? EXPIRED : undefined;
    },
    {
      connection: options.connection,
      prefix: options.prefix,
      concurrency: options.concurrency,
      lockDuration: options.lockDurationMs,
      stalledInterval: options.stalledIntervalMs,
      // Online jobs are removed as they finish: their replies went out on pub/sub.
      removeOnComplete: { count: 0 },
      removeOnFail: { count: 0 },
    },
  );
  worker.on('error', (err) => options.logger.warn({ err }, 'predict worker error'));
  worker.on('failed', (job, err) => options.logger.warn({ job_id: job?.id, err: err.message }, 'predict job failed'));
  return worker;
}
