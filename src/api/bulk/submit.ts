// POST /jobs behind the route: validated records → columnar chunks staged in Redis as they
// arrive → only once the whole body is valid, the job's hash and one queue job per chunk.
// A body with problems stages nothing that outlives the request, and enqueues nothing.
import { createHash, randomBytes } from 'node:crypto';
import type { BulkStore } from '../../shared/bulk-store.ts';
import { ValidationError, type ErrorDetail } from '../../shared/errors.ts';
import type { BulkChunkEncoding, BulkChunkJob } from '../../shared/queues.ts';
import type { BulkRecord } from '../../shared/schemas/record.ts';
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
 */
export type PinnedModel = { name: string; version?: number; alias?: string; displayVersion?: string };

export type SubmitRequest<R = BulkRecord> = {
  rows: AsyncIterable<ParsedRow<R>>;
  owner: string;
  idempotencyKey: string | undefined;
  model: PinnedModel;
  chunks: { encoding: BulkChunkEncoding; builder: ChunkEncoder<R> };
};

export type SubmitOutcome = { jobId: string; created: boolean };

/** 16 random bytes: unguessable, URL-safe, and no ':' (BullMQ refuses it in job ids). */
export function newJobId(): string {
  return randomBytes(16).toString('base64url');
}

export function idempotencyDigest(key: string): string {
  return createHash('sha256').update(key).digest('base64url');
}

/** The job an Idempotency-Key already names, if any: checked before the body is read. */
export async function findIdempotentJob(store: BulkStore, owner: string, key: string | undefined): Promise<string | null> {
  if (key === undefined) return null;
  return store.findIdempotentJob(owner, idempotencyDigest(key));
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
  const { builder, encoding } = request.chunks;
  const { model } = request;
  const problems: ErrorDetail[] = [];
  let total = 0;
  let staged = 0;

  const stage = async () => {
    await store.stageChunk(jobId, staged, builder.encode(), expiresAt);
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
  if (digest !== undefined) {
    const owner = await store.claimIdempotencyKey(request.owner, digest, jobId, expiresAt);
    if (owner !== jobId) {
      // The same key won a race with this request: that job is the answer.
      await store.dropStagedChunks(jobId, staged);
      return { jobId: owner, created: false };
    }
  }

  try {
    // The hash first: a worker that takes a chunk must find its job.
    await store.createJob({
      jobId,
      owner: request.owner,
      total,
      chunks: staged,
      chunkSize,
      createdAt,
      expiresAt,
      modelName: model.name,
      modelVersionNumber: model.version ?? null,
      modelVersion: model.displayVersion ?? null,
      encoding,
    });
    for (let from = 0; from < staged; from += ENQUEUE_BATCH) {
      const jobs: { data: BulkChunkJob; jobId: string }[] = [];
      for (let chunk = from; chunk < Math.min(staged, from + ENQUEUE_BATCH); chunk++) {
        const data: BulkChunkJob = {
          job_id: jobId,
          chunk,
          start: chunk * chunkSize,
          count: Math.min(chunkSize, total - chunk * chunkSize),
          model: model.name,
          ...(model.version === undefined ? {} : { version: model.version }),
          ...(model.alias === undefined ? {} : { alias: model.alias }),
          encoding,
        };
        jobs.push({ data, jobId: `${jobId}.${chunk}` });
      }
      await enqueueBulk(deps.producer, jobs);
    }
  } catch (err) {
    // Undo what can be undone; chunk jobs already queued find no job and are skipped.
    await Promise.allSettled([
      store.deleteJob(jobId),
      store.dropStagedChunks(jobId, staged),
      digest === undefined ? undefined : store.releaseIdempotencyKey(request.owner, digest),
    ]);
    throw err;
  }
  return { jobId, created: true };
}
