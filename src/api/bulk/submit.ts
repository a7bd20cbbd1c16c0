// POST /jobs behind the route: validated records → columnar chunks staged in Redis as they
// arrive, each queued (and so scored) at once from the first full chunk on, under a job that is
// still staging: invisible, of unknown size, unable to complete → once the whole body is valid,
// the job's size, its idempotency key and its last chunk → only once every chunk is queued, the
// job becomes visible (promoted). Scoring thus overlaps the upload instead of following it.
// A body with problems stages nothing that outlives the request, and enqueues nothing. An api that
// dies anywhere on the way leaves only keys that expire within STAGING_TTL_SECONDS, and a retry
// under the same Idempotency-Key finishes (or replaces) what it left.
import { createHash, randomBytes } from 'node:crypto';
import { setTimeout as sleep } from 'node:timers/promises';
import type { BulkJobState, BulkStore, OpenedBulkJob } from '../../shared/bulk-store.ts';
import { ValidationError, type ErrorDetail } from '../../shared/errors.ts';
import type { BulkChunkEncoding, BulkChunkJob } from '../../shared/queues.ts';
import type { BulkRecord } from '../../shared/schemas/record.ts';
import { enqueueBulk, type QueueProducer } from '../../shared/queue-clients.ts';
import { chunkPriority, chunkTag, type JobPriority, type Lane } from '../../shared/fair-share.ts';
import type { IntakeTurns } from './intake-turns.ts';
import type { ParsedRow } from './parsed-row.ts';

/** The contract: a refused body lists its first 100 problems, no more. */
export const MAX_REPORTED_PROBLEMS = 100;
/** Chunk jobs per addBulk call: one MULTI of ~35 commands each stays well under a second. */
const ENQUEUE_BATCH = 500;
/**
 * The longest the intake holds the event loop. A body that arrives faster than it is parsed is
 * always readable, and for await over a readable stream continues in microtasks without ever
 * returning to the loop: without a yield, a whole 10,000-record chunk (~30 ms) was parsed in one
 * go while online calls waited. Measured per 256 rows, where a time check costs nothing. Between
 * slices, the uploads parsed at once take turns, least parsed first (intake-turns.ts).
 */
export const INTAKE_SLICE_MS = 2;
const ROWS_PER_TIME_CHECK = 256;

export type SubmitDeps = {
  store: BulkStore;
  producer: QueueProducer<'bulk'>;
  chunkSize: number;
  maxRecords: number;
  ttlSeconds: number;
  stagingTtlSeconds: number;
  /** Tests only: a pause between the job record and its enqueue, where a crash is otherwise hard to hit. */
  pauseBeforeEnqueueMs?: number;
  /** A lane for a job of `level` opening now behind `ownerJobs` other jobs of its owner (fair-share.ts). */
  openLane: (level: JobPriority, ownerJobs: number) => Promise<Lane>;
  /** The turns every upload of this api shares between its slices. */
  turns: IntakeTurns;
};

/** What gathers a job's valid records into staged chunks: fraud's ChunkBuilder, or RowChunkBuilder. */
export interface ChunkEncoder<R> {
  readonly length: number;
  readonly full: boolean;
  push(record: R): void;
  encode(): Buffer;
  reset(): void;
}

/**
 * The model version a job is pinned to, resolved at submission. `version` is absent only when no
 * live worker could name one; then the first worker to take a chunk pins it (by `alias`, else the usual rule).
 * `shadow`: the version that scores the chunks again, to compare (?shadow=true).
 */
export type PinnedModel = { name: string; version?: number; alias?: string; displayVersion?: string; shadow?: number };

export type SubmitRequest<R = BulkRecord> = {
  rows: AsyncIterable<ParsedRow<R>>;
  owner: string;
  /** Where the job's chunks go in the bulk queue (fair-share.ts). */
  lane: Lane;
  /**
   * With a per-key quota: the records this job may hold, and the refusal past them (429
   * quota_exceeded). The job is then discarded like any refused body: nothing stays staged.
   */
  quota?: { allowance: number; refuse: () => Error };
  idempotencyKey: string | undefined;
  /** A job the Idempotency-Key names that will never run; the key may be taken from it. */
  replaces?: string | null;
  model: PinnedModel;
  chunks: { encoding: BulkChunkEncoding; builder: ChunkEncoder<R> };
};

export type SubmitOutcome = { jobId: string; created: boolean };

/**
 * 16 random bytes: unguessable, URL-safe, and no ':' (BullMQ refuses it in job ids). Never
 * starting with '-', which a command line (the scoring CLI's included) would take for an option.
 */
export function newJobId(): string {
  for (;;) {
    const id = randomBytes(16).toString('base64url');
    if (!id.startsWith('-')) return id;
  }
}

export function idempotencyDigest(key: string): string {
  return createHash('sha256').update(key).digest('base64url');
}

type QueuedJob = {
  jobId: string;
  total: number;
  chunks: number;
  chunkSize: number;
  model: PinnedModel;
  encoding: BulkChunkEncoding;
  lane: Lane;
};

/**
 * One queue job per chunk of [first, chunks), each naming the job's model, pin and encoding (the
 * worker scores it by that version only). Ids are fixed per chunk, so queuing a chunk twice adds
 * it once (or, once it is done and removed, again: its claim then finds it scored).
 */
async function enqueueChunks(deps: SubmitDeps, job: QueuedJob, first = 0): Promise<void> {
  const { model, encoding, lane } = job;
  for (let from = first; from < job.chunks; from += ENQUEUE_BATCH) {
    const jobs: { data: BulkChunkJob; jobId: string; priority: number }[] = [];
    for (let chunk = from; chunk < Math.min(job.chunks, from + ENQUEUE_BATCH); chunk++) {
      const tag = chunkTag(lane, chunk);
      const data: BulkChunkJob = {
        job_id: job.jobId,
        chunk,
        start: chunk * job.chunkSize,
        count: Math.min(job.chunkSize, job.total - chunk * job.chunkSize),
        model: model.name,
        ...(model.version === undefined ? {} : { version: model.version }),
        ...(model.alias === undefined ? {} : { alias: model.alias }),
        ...(model.shadow === undefined ? {} : { shadow: model.shadow }),
        encoding,
        priority: lane.level,
        tag,
      };
      jobs.push({ data, jobId: `${job.jobId}.${chunk}`, priority: chunkPriority(lane.level, tag) });
    }
    await enqueueBulk(deps.producer, jobs);
  }
}

/** The pin a job was recorded with, as its chunks name it. */
function pinnedModelOf(job: BulkJobState): PinnedModel {
  return {
    name: job.modelName,
    ...(job.modelVersionNumber === null ? {} : { version: job.modelVersionNumber }),
    ...(job.modelAlias === null ? {} : { alias: job.modelAlias }),
  };
}

export type KnownJob = { job: BulkJobState | null; stale: string | null };

/**
 * What an Idempotency-Key already names, checked before the body is read: a visible job (the
 * answer), or a staging job whose api died after staging all of it, which is queued and promoted
 * here (then it is the answer). A key naming a job that is gone or could not be finished is
 * `stale`: the request's own body makes the job, and takes the key over.
 */
export async function resumeIdempotentJob(deps: SubmitDeps, owner: string, key: string | undefined): Promise<KnownJob> {
  if (key === undefined) return { job: null, stale: null };
  const { store } = deps;
  const jobId = await store.findIdempotentJob(owner, idempotencyDigest(key));
  if (jobId === null) return { job: null, stale: null };
  const job = await store.readJob(jobId);
  if (!job) return { job: null, stale: jobId };
  if (!job.staging) return { job, stale: null };
  // The lane it was first queued in is not kept: its chunks go in again level with the jobs waiting now.
  const lane = await deps.openLane(job.priority, 0);
  await enqueueChunks(deps, { ...job, model: pinnedModelOf(job), lane });
  const status = await store.promoteJob(jobId, job.expiresAt, Date.now());
  if (status === null || status === 'failed') return { job: null, stale: jobId };
  return { job: await store.readJob(jobId), stale: null };
}

/**
 * Reads, validates and stages a bulk body, then creates and enqueues the job.
 * Throws ValidationError (400) naming up to 100 bad rows, PayloadTooLargeError (413) from the
 * body, or whatever Redis throws; in every case the chunks staged so far are deleted.
 */
export async function submitBulkJob<R>(deps: SubmitDeps, request: SubmitRequest<R>): Promise<SubmitOutcome> {
  const { store, chunkSize, maxRecords } = deps;
  const jobId = newJobId();
  const createdAt = Date.now();
  const expiresAt = createdAt + deps.ttlSeconds * 1000;
  const stagingUntil = createdAt + deps.stagingTtlSeconds * 1000;
  const { builder, encoding } = request.chunks;
  const { model, lane, quota } = request;
  const problems: ErrorDetail[] = [];
  let total = 0;
  let staged = 0;
  /** The job's hash exists (staging): chunks are queued as they are staged. */
  let opened = false;
  /** Chunks [0, queued) are queued. */
  let queued = 0;
  const opening: OpenedBulkJob = {
    jobId,
    owner: request.owner,
    chunkSize,
    createdAt,
    expiresAt,
    stagingUntil,
    modelName: model.name,
    modelVersionNumber: model.version ?? null,
    modelVersion: model.displayVersion ?? null,
    modelAlias: model.alias ?? null,
    encoding,
    priority: lane.level,
  };

  const stage = async () => {
    await store.stageChunk(jobId, staged, builder.encode(), stagingUntil);
    staged++;
    builder.reset();
  };
  /** A full chunk: staged, then queued under the opened job, whose workers may start on it. */
  const stageAndQueue = async () => {
    await stage();
    if (!opened) {
      await store.openJob(opening);
      opened = true;
    }
    await enqueueChunks(deps, { jobId, total: staged * chunkSize, chunks: staged, chunkSize, model, encoding, lane }, queued);
    queued = staged;
  };
  /**
   * Whatever the request left in Redis. The job goes first: a chunk job already queued then finds
   * no job and is skipped, and a worker scoring one commits nothing. Then its listing entry, its chunks, and the
   * chunk jobs no worker holds (one that is active ends as skipped).
   */
  const discard = async () => {
    await store.deleteJob(jobId);
    // Listed once opened (or created): the member goes too, not left for a later listing to drop.
    await store.forgetJobs(request.owner, [jobId]);
    if (!opened) return store.dropStagedChunks(jobId, staged);
    await store.dropJobChunks(jobId, staged);
    for (let chunk = 0; chunk < queued; chunk++) await deps.producer.queue.remove(`${jobId}.${chunk}`).catch(() => 0);
  };

  /** The refusal this function throws itself, told apart from a parser's fatal error by identity. */
  let refusal: ValidationError | undefined;
  let rows = 0;
  let sliceStarted = performance.now();
  try {
    for await (const row of request.rows) {
      if (++rows % ROWS_PER_TIME_CHECK === 0 && performance.now() - sliceStarted > INTAKE_SLICE_MS) {
        await deps.turns.next(rows);
        sliceStarted = performance.now();
      }
      if (!row.ok) {
        problems.push(...row.details);
        if (problems.length >= MAX_REPORTED_PROBLEMS) break;
        continue;
      }
      total++;
      if (total > maxRecords) {
        problems.push({ path: 'records', message: `More than ${maxRecords} records (MAX_JOB_RECORDS)` });
        break;
      }
      if (quota && total > quota.allowance) throw quota.refuse();
      // Once a problem is known the job will not run: keep validating, stop staging.
      if (problems.length > 0) continue;
      builder.push(row.record);
      if (builder.full) await stageAndQueue();
    }
    if (problems.length === 0 && total === 0) {
      problems.push({ path: 'records', message: 'At least one record is required' });
    }
    if (problems.length > 0) {
      refusal = new ValidationError(
        `The job was refused: ${problems.length >= MAX_REPORTED_PROBLEMS ? 'at least ' : ''}${problems.length} problem(s)`,
        problems.slice(0, MAX_REPORTED_PROBLEMS),
      );
      throw refusal;
    }
    if (builder.length > 0) await stage();
  } catch (err) {
    await discard().catch(() => undefined);
    // A fatal parse error after some row problems: report both, the rows first.
    if (err instanceof ValidationError && problems.length > 0 && err !== refusal) {
      throw new ValidationError('The job was refused', [...problems, ...(err.details ?? [])].slice(0, MAX_REPORTED_PROBLEMS));
    }
    throw err;
  }

  const digest = request.idempotencyKey === undefined ? undefined : idempotencyDigest(request.idempotencyKey);
  let claimed = false;
  try {
    // Recorded first, but invisible and short-lived until promoted: a worker that takes a chunk
    // must find its job, and a client must never be handed one whose chunks are not all queued.
    if (opened) await store.sealJob(jobId, total, staged);
    else await store.createJob({ ...opening, total, chunks: staged });
    if (digest !== undefined) {
      const owner = await store.claimIdempotencyKey(request.owner, digest, jobId, expiresAt, request.replaces ?? null);
      if (owner !== jobId) {
        // The same key won a race with this request: that job is the answer.
        await discard();
        return { jobId: owner, created: false };
      }
      claimed = true;
    }
    if (deps.pauseBeforeEnqueueMs) await sleep(deps.pauseBeforeEnqueueMs);
    await enqueueChunks(deps, { jobId, total, chunks: staged, chunkSize, model, encoding, lane }, queued);
    await store.promoteJob(jobId, expiresAt, Date.now());
  } catch (err) {
    // Undo what can be undone; chunk jobs already queued find no job and are skipped.
    await Promise.allSettled([discard(), claimed && digest !== undefined ? store.releaseIdempotencyKey(request.owner, digest) : undefined]);
    throw err;
  }
  return { jobId, created: true };
}
