// Drains bulk chunks: one chunk at a time per worker, scored in slices of a few ms (sized by
// their measured time) that each wait until this worker holds no online work (online-first.ts),
// so an online batch never waits behind more than one slice, and BullMQ keeps renewing the
// chunk's lock. One Lua script claims a chunk (its status and staged
// input in one round trip); the tensor is encoded straight from the chunk's columns. A chunk's
// results and progress are written by one Lua script, once (SET NX), so a chunk retried after a
// crash, a stall or a SIGTERM counts once.
//
// A job is pinned to one model version at submission (chunk-scorers.ts scores either form). A
// chunk is scored by that version only, under a lease on it from the repository; a worker that
// does not hold it puts the chunk back for later without spending an attempt, so a worker that
// holds it (or this one, once it has loaded it) scores it. Never by another version.
import { setImmediate as nextTurn } from 'node:timers/promises';
import { DelayedError, UnrecoverableError } from 'bullmq';
import { createBulkStore } from '../shared/bulk-store.ts';
import type { LogSink } from '../shared/logger.ts';
import { QUEUES, type BulkChunkJob, type ChunkOutcome } from '../shared/queues.ts';
import { createConsumers, type QueueConsumer } from '../shared/queue-clients.ts';
import type { RedisClient } from '../shared/redis.ts';
import type { ModelRepository } from './model-repository.ts';
import { compareChunk, scoreColumnChunk, scoreRowChunk, type ScoredChunk } from './chunk-scorers.ts';
import type { ShadowScoring } from './shadow-scoring.ts';
import type { WorkerMetrics } from './worker-metrics.ts';
import type { ModelVersion } from './model-version.ts';
import { SliceSizer, type OnlineFirst } from './online-first.ts';
import type { SliceRunner } from './bulk-runner.ts';
import { advanceClock } from '../shared/fair-share.ts';

/**
 * How long a chunk waits before it is offered again when this worker does not hold its version:
 * long enough not to spin on it, short enough that a worker holding it soon finds it.
 */
export const UNHELD_RETRY_MS = 1_000;

export type BulkConsumerOptions = {
  /** A connection of the bulk worker's own; it must have maxRetriesPerRequest null. */
  connection: RedisClient;
  prefix: string;
  /** Shards of the bulk chunk queue (BULK_QUEUE_SHARDS); the worker drains every one. */
  shards: number;
  repository: ModelRepository;
  lockDurationMs: number;
  stalledIntervalMs: number;
  /** Held by the online consumers while they have work in hand; every slice waits for it. */
  onlineFirst: OnlineFirst;
  /** How long one slice (one session.run) should take (BULK_SLICE_MS). */
  sliceMs: number;
  /** Runs the slices (the bulk thread). */
  runner: SliceRunner;
  /** Where the comparisons of a `?shadow=true` job's chunks go (metrics and the model's stream). */
  shadows: ShadowScoring;
  /** Telemetry.tracing: BullMQ's per-chunk spans only while spans are exported. */
  tracing: boolean;
  metrics: WorkerMetrics;
  logger: LogSink;
};

export type { ChunkOutcome };

export function startBulkConsumer(options: BulkConsumerOptions): QueueConsumer<'bulk'>[] {
  const { repository, metrics, logger } = options;
  const store = createBulkStore(options.connection, options.prefix);
  // Slice sizes are learnt per version: rows per ms differ by model, and a reload is a new model.
  const sizers = new WeakMap<ModelVersion, SliceSizer>();
  const sizerFor = (model: ModelVersion) => {
    let sizer = sizers.get(model);
    if (!sizer) sizers.set(model, (sizer = new SliceSizer(options.sliceMs)));
    return sizer;
  };
  const beforeSlice = async () => {
    await nextTurn();
    await options.onlineFirst.idle();
  };

  /** The version the chunk's job is pinned to; a job submitted while no worker was live is pinned now. */
  async function pinnedVersion(data: BulkChunkJob): Promise<number | null> {
    if (data.version !== undefined) return data.version;
    const resolved = repository.resolve(data.model, data.alias === undefined ? {} : { alias: data.alias });
    if (!resolved.ok) return (await store.readJob(data.job_id))?.modelVersionNumber ?? null;
    return store.pinVersion(data.job_id, resolved.model.version);
  }

  async function processChunk(
    data: BulkChunkJob,
    job: { moveToDelayed(at: number, token?: string): Promise<void> },
    token: string | undefined,
  ): Promise<ChunkOutcome> {
    const { job_id: jobId, chunk, count } = data;
    const version = await pinnedVersion(data);
    const lease = version === null ? undefined : repository.acquire(data.model, { version });
    if (!lease || !('model' in lease)) {
      // Nothing to wait for once the job is over or gone.
      const state = await store.readJob(jobId);
      if (!state || (state.status !== 'queued' && state.status !== 'running')) return 'skipped';
      logger.debug({ job_id: jobId, chunk, model_name: data.model, model_version: version }, 'bulk chunk waits for its version');
      await job.moveToDelayed(Date.now() + UNHELD_RETRY_MS, token);
      throw new DelayedError();
    }
    try {
      return await scoreClaimed(data, lease.model, count);
    } finally {
      lease.release();
    }
  }

  async function scoreClaimed(data: BulkChunkJob, model: ModelVersion, count: number): Promise<ChunkOutcome> {
    const { job_id: jobId, chunk } = data;

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
    // The fair-share clock follows the chunks taken, so a job that opens now starts level with them.
    if (data.priority !== undefined && data.tag !== undefined) await advanceClock(options.connection, options.prefix, data.priority, data.tag);
    const scoring = { model, runner: options.runner, slices: sizerFor(model), metrics, beforeSlice };
    const scored: ScoredChunk =
      data.encoding === 'columns' ? await scoreColumnChunk(scoring, claim.input) : await scoreRowChunk(scoring, claim.input);
    if (scored.rows !== count) throw new UnrecoverableError(`chunk ${chunk} holds ${scored.rows} records, expected ${count}`);

    // Results and progress move together, once; the records-scored count follows a new write.
    const outcome = await store.commitChunk(jobId, chunk, scored.results, scored.rows, scored.displayVersion, Date.now());
    if (outcome === 'written') metrics.recordsScored.add(scored.rows, { kind: 'bulk', model_name: model.name, model_version: String(model.version) });
    // Only then may BullMQ hear the chunk is done (on a cluster, perhaps on another master).
    if (outcome === 'written' || outcome === 'duplicate') await store.awaitReplica(jobId);
    // Once: a retried chunk found scored is not compared again.
    if (outcome === 'written' && data.shadow !== undefined) await compareWithShadow(model, data.shadow, scored);
    logger.debug(
      { job_id: jobId, chunk, rows: scored.rows, outcome, model_name: model.name, model_version: scored.displayVersion },
      'bulk chunk done',
    );
    return outcome;
  }

  /**
   * A `?shadow=true` job's chunk, scored again by the shadow version at bulk priority (slices wait
   * for online work like the chunk's own) and compared. Its results are already written: nothing
   * here can change them or fail the chunk.
   */
  async function compareWithShadow(answered: ModelVersion, shadowVersion: number, scored: ScoredChunk): Promise<void> {
    const { shadows } = options;
    const lease = repository.acquire(answered.name, { version: shadowVersion });
    if (!('model' in lease)) return shadows.failed(answered, shadowVersion, scored.rows, 'shadow_not_held');
    try {
      const scoring = { model: lease.model, runner: options.runner, slices: sizerFor(lease.model), metrics, beforeSlice };
      const comparison = await compareChunk(scoring, answered, scored);
      if ('failed' in comparison) shadows.failed(answered, shadowVersion, comparison.records, comparison.failed);
      else await shadows.publish(answered, lease.model, comparison);
    } catch (err) {
      shadows.failed(answered, shadowVersion, scored.rows, 'model_error');
      logger.warn({ err, model_name: answered.name, shadow_version: shadowVersion }, 'shadow version failed on a bulk chunk');
    } finally {
      lease.release();
    }
  }

  // Concurrency 1 (per shard), maxStalledCount 2 and BullMQ's telemetry come from the catalog (queues.ts).
  const workers = createConsumers(QUEUES.bulk, processChunk, {
    connection: options.connection,
    prefix: options.prefix,
    lockDurationMs: options.lockDurationMs,
    stalledIntervalMs: options.stalledIntervalMs,
    shards: options.shards,
    tracing: options.tracing,
  });
  for (const worker of workers) {
    worker.on('error', (err) => logger.warn({ err, queue: worker.name }, 'bulk worker error'));
    worker.on('failed', (job, err) => {
      if (!job) return;
      // finishedOn is set only when BullMQ gave up on the chunk (attempts spent, unrecoverable, or
      // stalled too often); a retry leaves it unset. A job that cannot finish ends failed, not running.
      if (!job.finishedOn) {
        logger.warn({ chunk_job: job.id, attempt: job.attemptsMade, err }, 'bulk chunk failed; it will be retried');
        return;
      }
      const parsed = QUEUES.bulk.data.safeParse(job.data);
      if (!parsed.success) return;
      const { job_id: jobId, chunk } = parsed.data;
      logger.error({ job_id: jobId, chunk_job: job.id, err }, 'bulk chunk failed for good; failing its job');
      store
        .failJob(jobId, `chunk ${chunk} failed: ${err.message}`, Date.now())
        .catch((e: unknown) => logger.error({ err: e, job_id: jobId }, 'could not mark bulk job failed'));
    });
  }
  return workers;
}
