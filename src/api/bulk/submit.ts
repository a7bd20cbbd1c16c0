// POST /jobs behind the route: validated records → columnar chunks staged in Redis as they
// arrive → only once the whole body is valid, the job's hash (staging) and one queue job per
// chunk → only once every chunk is queued, the job becomes visible (promoted).
// A body with problems stages nothing that outlives the request, and enqueues nothing. An api that
// dies anywhere on the way leaves only keys that expire within STAGING_TTL_SECONDS, and a retry
// under the same Idempotency-Key finishes (or replaces) what it left.
import { createHash, randomBytes } from 'node:crypto';
import { setTimeout as sleep } from 'node:timers/promises';
import { ChunkBuilder } from '../../shared/bulk-chunk.ts';
import type { BulkJobState, BulkStore } from '../../shared/bulk-store.ts';
import { ValidationError, type ErrorDetail } from '../../shared/errors.ts';
import type { BulkChunkJob } from '../../shared/queues.ts';
import { enqueueBulk, type QueueProducer } from '../../shared/queue-clients.ts';
import type { ParsedRow } from './parsed-row.ts';

/** The contract: a refused body lists its first 100 problems, no more. */
export const MAX_REPORTED_PROBLEMS = 100;
/** Chunk jobs per addBulk call: one MULTI of ~35 commands each stays well under a second. */
const ENQUEUE_BATCH = 500;

export type SubmitDeps = {
  store: BulkStore;
  producer: QueueProducer<'bulk'>;
  chunkSize: number;
  maxRecords: number;
  ttlSeconds: number;
  stagingTtlSeconds: number;
  /** Tests only: a pause between the job record and its enqueue, where a crash is otherwise hard to hit. */
  pauseBeforeEnqueueMs?: number;
};

export type SubmitRequest = {
  rows: AsyncIterable<ParsedRow>;
  owner: string;
  idempotencyKey: string | undefined;
  /** A job the Idempotency-Key names that will never run; the key may be taken from it. */
  replaces?: string | null;
};

export type SubmitOutcome = { jobId: string; created: boolean };

/** 16 random bytes: unguessable, URL-safe, and no ':' (BullMQ refuses it in job ids). */
export function newJobId(): string {
  return randomBytes(16).toString('base64url');
}

export function idempotencyDigest(key: string): string {
  return createHash('sha256').update(key).digest('base64url');
}

/** One queue job per chunk. Ids are fixed per chunk, so queuing a chunk twice adds it once. */
async function enqueueChunks(deps: SubmitDeps, job: { jobId: string; total: number; chunks: number; chunkSize: number }): Promise<void> {
  for (let from = 0; from < job.chunks; from += ENQUEUE_BATCH) {
    const jobs: { data: BulkChunkJob; jobId: string }[] = [];
    for (let chunk = from; chunk < Math.min(job.chunks, from + ENQUEUE_BATCH); chunk++) {
      const data: BulkChunkJob = {
        job_id: job.jobId,
        chunk,
        start: chunk * job.chunkSize,
        count: Math.min(job.chunkSize, job.total - chunk * job.chunkSize),
      };
      jobs.push({ data, jobId: `${job.jobId}.${chunk}` });
    }
    await enqueueBulk(deps.producer, jobs);
  }
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
  await enqueueChunks(deps, job);
  const status = await store.promoteJob(jobId, job.expiresAt, Date.now());
  if (status === null || status === 'failed') return { job: null, stale: jobId };
  return { job: await store.readJob(jobId), stale: null };
}

/**
 * Reads, validates and stages a bulk body, then creates and enqueues the job.
 * Throws ValidationError (400) naming up to 100 bad rows, PayloadTooLargeError (413) from the
 * body, or whatever Redis throws; in every case the chunks staged so far are deleted.
 */
export async function submitBulkJob(deps: SubmitDeps, request: SubmitRequest): Promise<SubmitOutcome> {
  const { store, chunkSize, maxRecords } = deps;
  const jobId = newJobId();
  const createdAt = Date.now();
  const expiresAt = createdAt + deps.ttlSeconds * 1000;
  const stagingUntil = createdAt + deps.stagingTtlSeconds * 1000;
  const builder = new ChunkBuilder(chunkSize);
  const problems: ErrorDetail[] = [];
  let total = 0;
  let staged = 0;

  const stage = async () => {
    await store.stageChunk(jobId, staged, builder.encode(), stagingUntil);
    staged++;
    builder.reset();
  };

  try {
    for await (const row of request.rows) {
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
      // Once a problem is known the job will not run: keep validating, stop staging.
      if (problems.length > 0) continue;
      builder.push(row.record);
      if (builder.full) await stage();
    }
    if (problems.length === 0 && total === 0) {
      problems.push({ path: 'records', message: 'At least one record is required' });
    }
    if (problems.length > 0) {
      throw new ValidationError(`The job was refused: ${problems.length >= MAX_REPORTED_PROBLEMS ? 'at least ' : ''}${problems.length} problem(s)`, problems.slice(0, MAX_REPORTED_PROBLEMS));
    }
    if (builder.length > 0) await stage();
  } catch (err) {
    await store.dropStagedChunks(jobId, staged).catch(() => undefined);
    // A fatal parse error after some row problems: report both, the rows first.
    if (err instanceof ValidationError && problems.length > 0 && !err.message.startsWith('The job was refused')) {
      throw new ValidationError('The job was refused', [...problems, ...(err.details ?? [])].slice(0, MAX_REPORTED_PROBLEMS));
    }
    throw err;
  }

  const digest = request.idempotencyKey === undefined ? undefined : idempotencyDigest(request.idempotencyKey);
  let claimed = false;
  try {
    // Recorded first, but invisible and short-lived until promoted: a worker that takes a chunk
    // must find its job, and a client must never be handed one whose chunks are not all queued.
    await store.createJob({ jobId, owner: request.owner, total, chunks: staged, chunkSize, createdAt, expiresAt, stagingUntil });
    if (digest !== undefined) {
      const owner = await store.claimIdempotencyKey(request.owner, digest, jobId, expiresAt, request.replaces ?? null);
      if (owner !== jobId) {
        // The same key won a race with this request: that job is the answer.
        await Promise.all([store.deleteJob(jobId), store.dropStagedChunks(jobId, staged)]);
        return { jobId: owner, created: false };
      }
      claimed = true;
    }
    if (deps.pauseBeforeEnqueueMs) await sleep(deps.pauseBeforeEnqueueMs);
    await enqueueChunks(deps, { jobId, total, chunks: staged, chunkSize });
    await store.promoteJob(jobId, expiresAt, Date.now());
  } catch (err) {
    // Undo what can be undone; chunk jobs already queued find no job and are skipped.
    await Promise.allSettled([
      store.deleteJob(jobId),
      store.dropStagedChunks(jobId, staged),
      claimed && digest !== undefined ? store.releaseIdempotencyKey(request.owner, digest) : undefined,
    ]);
    throw err;
  }
  return { jobId, created: true };
}
