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
};

type Arrival = { job: PredictJob; pickedAt: number };

export function startPredictConsumer(options: PredictConsumerOptions): Worker {
  const { model, thresholds, metrics, publisher } = options;

  async function scoreBatch(arrivals: Arrival[]): Promise<void> {
    const batchStart = Date.now();
    const live: { arrival: Arrival; call: PredictJob['calls'][number] }[] = [];
    let expired = 0;
    for (const arrival of arrivals) {
      for (const call of arrival.job.calls) {
        if (call.deadline <= batchStart) expired++;
        else live.push({ arrival, call });
      }
    }
    if (expired > 0) metrics.onlineCalls.add(expired, { outcome: 'expired' });
    if (live.length === 0) return;

    const records: FraudRecord[] = [];
    for (const { call } of live) for (const r of call.records) records.push(r);
    const inferenceStart = performance.now();
    const probabilities = await model.score(records);
    const inferenceMs = performance.now() - inferenceStart;

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
    await pipeline.exec();
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
      await batcher.add({ job: parsed.data, pickedAt });
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
