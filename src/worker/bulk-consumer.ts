// Drains bulk chunks: one chunk at a time per worker, scored in slices that yield to the event
// loop between session.runs, so the online consumer's batches interleave (online work first) and
// BullMQ keeps renewing the chunk's lock. One Lua script claims a chunk (its status and staged
// input in one round trip); the tensor is encoded straight from the chunk's columns. A chunk's
// results and progress are written by one Lua script, once (SET NX), so a chunk retried after a
// crash, a stall or a SIGTERM counts once.
import { setImmediate as nextTurn } from 'node:timers/promises';
import { UnrecoverableError } from 'bullmq';
import { decisionCode, decodeChunk, encodeResults } from '../shared/bulk-chunk.ts';
import { createBulkStore } from '../shared/bulk-store.ts';
import type { LogSink } from '../shared/logger.ts';
import { QUEUES, type BulkChunkJob, type ChunkOutcome } from '../shared/queues.ts';
import { createConsumers, type QueueConsumer } from '../shared/queue-clients.ts';
import type { RedisClient } from '../shared/redis.ts';
import { decide, type Thresholds } from './decide.ts';
import { createFeatureEncoder } from './features.ts';
import type { ScoringModel } from './model.ts';
import type { WorkerMetrics } from './worker-metrics.ts';

/**
 * Rows per session.run. On this project's 2-core box a 10,000-record chunk scores in ~50 ms, so
 * a 2048-row run is ~10 ms: short enough that an online batch waiting behind it keeps its latency,
 * and the lock renewal (every lockDuration / 2) never waits long for the event loop.
 */
export const BULK_SLICE_ROWS = 2048;

export type BulkConsumerOptions = {
  /** A connection of the bulk worker's own; it must have maxRetriesPerRequest null. */
  connection: RedisClient;
  prefix: string;
  /** Shards of the bulk chunk queue (BULK_QUEUE_SHARDS); the worker drains every one. */
  shards: number;
  model: ScoringModel;
  thresholds: Thresholds;
  lockDurationMs: number;
  stalledIntervalMs: number;
  metrics: WorkerMetrics;
  logger: LogSink;
};

export type { ChunkOutcome };

export function startBulkConsumer(options: BulkConsumerOptions): QueueConsumer<'bulk'>[] {
  const { model, thresholds, metrics, logger } = options;
  const store = createBulkStore(options.connection, options.prefix);
  // The model's own encoding, fed from the chunk's columns rather than from records.
  const encoder = createFeatureEncoder(model.manifest.input);

  async function processChunk(data: BulkChunkJob): Promise<ChunkOutcome> {
    const { job_id: jobId, chunk, count } = data;

    const claim = await store.claimChunk(jobId, chunk, Date.now());
    switch (claim.outcome) {
      case 'claimed':
        break;
      // Scored already by an attempt that died (or lost its replica wait) before BullMQ heard of it.
      case 'scored':
        await store.awaitReplica(jobId);
        return 'duplicate';
      // A cancelled, failed, completed or expired job's chunks are not scored.
      case 'finished':
      case 'gone':
        return 'skipped';
      case 'missing':
        throw new UnrecoverableError(`the staged input of chunk ${chunk} is gone`);
    }
    const columns = decodeChunk(claim.input);
    if (columns.length !== count) throw new UnrecoverableError(`chunk ${chunk} holds ${columns.length} records, expected ${count}`);

    const probabilities = new Float32Array(columns.length);
    for (let from = 0; from < columns.length; from += BULK_SLICE_ROWS) {
      const to = Math.min(columns.length, from + BULK_SLICE_ROWS);
      const started = performance.now();
      probabilities.set(await model.scoreFeatures(encoder.encodeColumns(columns, from, to), to - from), from);
      metrics.batchRecords.record(to - from);
      metrics.inferenceDuration.record((performance.now() - started) / 1000);
      // Let online batches, lock renewal and the stalled check run between slices.
      await nextTurn();
    }
    const decisions = new Uint8Array(columns.length);
    for (let i = 0; i < decisions.length; i++) decisions[i] = decisionCode(decide(probabilities[i]!, thresholds));

    const results = encodeResults({ length: columns.length, probabilities, decisions, ids: columns.ids });
    // Results and progress move together, once; the records-scored count follows a new write.
    const outcome = await store.commitChunk(jobId, chunk, results, columns.length, model.version, Date.now());
    if (outcome === 'written') metrics.recordsScored.add(columns.length, { kind: 'bulk' });
    // Only then may BullMQ hear the chunk is done (on a cluster, perhaps on another master).
    if (outcome === 'written' || outcome === 'duplicate') await store.awaitReplica(jobId);
    logger.debug({ job_id: jobId, chunk, rows: columns.length, outcome }, 'bulk chunk done');
    return outcome;
  }

  // Concurrency 1 (per shard), maxStalledCount 2 and BullMQ's telemetry come from the catalog (queues.ts).
  const workers = createConsumers(QUEUES.bulk, processChunk, {
    connection: options.connection,
    prefix: options.prefix,
    lockDurationMs: options.lockDurationMs,
    stalledIntervalMs: options.stalledIntervalMs,
    shards: options.shards,
  });
  for (const worker of workers) {
    worker.on('error', (err) => logger.warn({ err, queue: worker.name }, 'bulk worker error'));
    worker.on('failed', (job, err) => {
      if (!job) return;
      // finishedOn is set only when BullMQ gave up on the chunk (attempts spent, unrecoverable, or
      // stalled too often); a retry leaves it unset. A job that cannot finish ends failed, not running.
      if (!job.finishedOn) {
        logger.warn({ chunk_job: job.id, attempt: job.attemptsMade, err: err.message }, 'bulk chunk failed; it will be retried');
        return;
      }
      const parsed = QUEUES.bulk.data.safeParse(job.data);
      if (!parsed.success) return;
      const { job_id: jobId, chunk } = parsed.data;
      logger.error({ job_id: jobId, chunk_job: job.id, err: err.message }, 'bulk chunk failed for good; failing its job');
      store
        .failJob(jobId, `chunk ${chunk} failed: ${err.message}`, Date.now())
        .catch((e: unknown) => logger.error({ err: e, job_id: jobId }, 'could not mark bulk job failed'));
    });
  }
  return workers;
}
