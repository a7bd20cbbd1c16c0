// The one owner of a bulk job's state in Redis: its hash, staged input chunks, result chunks and
// idempotency key. The api creates, reads and cancels jobs; the worker moves them along. Every
// transition is one Lua script, so two workers (or a worker and a DELETE) cannot interleave, and
// every key of a job expires at the same instant, expires_at (PEXPIREAT), never lazily.
import type { Redis } from 'ioredis';
import { bulkIdempotencyKey, bulkInputKey, bulkJobKey, bulkResultKey, recordsScoredKey } from './keys.ts';
import { JobStatusNameSchema, type JobStatusName } from './schemas/bulk-job.ts';
import type { BulkChunkEncoding } from './queues.ts';

/** Hash fields counting the records each display version scored. */
const SCORED_BY = 'scored_by:';

export type BulkJobState = {
  jobId: string;
  status: JobStatusName;
  owner: string;
  total: number;
  done: number;
  chunks: number;
  chunkSize: number;
  modelVersion: string | null;
  /** The model the job is for (jobs made before models were named: fraud). */
  modelName: string;
  /** The version the job is pinned to; null until a worker pins a job submitted while none was live. */
  modelVersionNumber: number | null;
  /** How its chunks are staged, and so how its results are read. */
  encoding: BulkChunkEncoding;
  /** Records scored per display version: one entry when the pin held for every chunk. */
  scoredBy: Record<string, number>;
  createdAt: number;
  startedAt: number | null;
  finishedAt: number | null;
  expiresAt: number;
  error: string | null;
};

export type NewBulkJob = {
  jobId: string;
  owner: string;
  total: number;
  chunks: number;
  chunkSize: number;
  createdAt: number;
  expiresAt: number;
  /** Default fraud. */
  modelName?: string;
  /** Default null: pinned by the first worker to take a chunk. */
  modelVersionNumber?: number | null;
  /** The pinned version's display version, when the api knows it at submission. */
  modelVersion?: string | null;
  /** Default columns (fraud's). */
  encoding?: BulkChunkEncoding;
};

/** Outcome of writing a chunk's results. */
export const COMMIT_OUTCOMES = { written: 1, duplicate: 0, gone: -1, finished: -2 } as const;
export type CommitOutcome = keyof typeof COMMIT_OUTCOMES;

// Everything a worker needs before scoring a chunk, in one round trip: queued → running on the
// first chunk taken, then the staged input, unless the chunk need not be scored. Replies
// {'claimed', input}; {'scored'} when an earlier attempt wrote its results; {'missing'} when
// neither input nor results exist; {status} of a job that is over; {'gone'} once it expired.
const CLAIM_CHUNK = `
local status = redis.call('HGET', KEYS[1], 'status')
if not status then return {'gone'} end
if status == 'queued' then
  redis.call('HSET', KEYS[1], 'status', 'running', 'started_at', ARGV[1])
  status = 'running'
end
if status ~= 'running' then return {status} end
if redis.call('EXISTS', KEYS[3]) == 1 then return {'scored'} end
local input = redis.call('GET', KEYS[2])
if not input then return {'missing'} end
return {'claimed', input}`;

// Writes a chunk's results once. Only a new write counts toward progress, so a chunk scored twice
// (a worker killed after the write, before BullMQ heard of it) still counts once. The last chunk
// completes the job. The staged input is no longer needed once its results exist. The service's
// records-scored counter (KEYS[4], the api's scoring rate) moves in the same step, so it too
// counts each chunk once. That key is not under the job's hash tag: on a Redis Cluster this
// script would need it moved to the job's slot.
const COMMIT_CHUNK = `
local status = redis.call('HGET', KEYS[1], 'status')
if not status then return -1 end
if status ~= 'queued' and status ~= 'running' then return -2 end
local ttl = redis.call('PTTL', KEYS[1])
if ttl <= 0 then return -1 end
if not redis.call('SET', KEYS[2], ARGV[1], 'NX', 'PX', ttl) then return 0 end
redis.call('DEL', KEYS[3])
local done = redis.call('HINCRBY', KEYS[1], 'done', ARGV[2])
redis.call('INCRBY', KEYS[4], ARGV[2])
redis.call('HSET', KEYS[1], 'model_version', ARGV[4])
redis.call('HINCRBY', KEYS[1], 'scored_by:' .. ARGV[4], ARGV[2])
if status == 'queued' then redis.call('HSET', KEYS[1], 'status', 'running', 'started_at', ARGV[3]) end
if done >= tonumber(redis.call('HGET', KEYS[1], 'total')) then
  redis.call('HSET', KEYS[1], 'status', 'completed', 'finished_at', ARGV[3])
end
return 1`;

// Pins a job to a version once: the first worker to ask sets it, every later one reads it.
const PIN_VERSION = `
if redis.call('EXISTS', KEYS[1]) == 0 then return false end
redis.call('HSETNX', KEYS[1], 'model_version_number', ARGV[1])
return redis.call('HGET', KEYS[1], 'model_version_number')`;

// queued | running → ARGV[1] (failed or cancelled); a finished job stays as it is.
const FINISH_JOB = `
local status = redis.call('HGET', KEYS[1], 'status')
if not status then return false end
if status == 'queued' or status == 'running' then
  redis.call('HSET', KEYS[1], 'status', ARGV[1], 'finished_at', ARGV[2])
  if ARGV[3] ~= '' then redis.call('HSET', KEYS[1], 'error', ARGV[3]) end
  return ARGV[1]
end
return status`;

/** Why a chunk is not to be scored, or its input when it is. */
export type ChunkClaim =
  | { outcome: 'claimed'; input: Buffer }
  /** An earlier attempt wrote its results (and died before BullMQ heard of it). */
  | { outcome: 'scored' }
  /** The job runs but the chunk has neither input nor results: it cannot be scored. */
  | { outcome: 'missing' }
  /** The job is over (cancelled, failed or completed): its chunks are not scored. */
  | { outcome: 'finished'; status: JobStatusName }
  /** The job expired. */
  | { outcome: 'gone' };

type ScriptedRedis = Redis & {
  bulkClaimChunkBuffer(job: string, input: string, out: string, now: number): Promise<[Buffer, Buffer?]>;
  bulkCommitChunk(
    job: string,
    out: string,
    input: string,
    scored: string,
    result: Buffer,
    rows: number,
    now: number,
    modelVersion: string,
  ): Promise<number>;
  bulkFinishJob(job: string, status: string, now: number, reason: string): Promise<string | null>;
  bulkPinVersion(job: string, version: number): Promise<string | null>;
};

function withScripts(redis: Redis): ScriptedRedis {
  // defineCommand sends EVALSHA and falls back to EVAL once per connection; redefining is harmless.
  redis.defineCommand('bulkClaimChunk', { numberOfKeys: 3, lua: CLAIM_CHUNK });
  redis.defineCommand('bulkCommitChunk', { numberOfKeys: 4, lua: COMMIT_CHUNK });
  redis.defineCommand('bulkFinishJob', { numberOfKeys: 1, lua: FINISH_JOB });
  redis.defineCommand('bulkPinVersion', { numberOfKeys: 1, lua: PIN_VERSION });
  return redis as ScriptedRedis;
}

function optionalNumber(value: string | undefined): number | null {
  return value === undefined || value === '' ? null : Number(value);
}

/** Redis access for bulk jobs under one key prefix. */
export function createBulkStore(connection: Redis, prefix: string) {
  const redis = withScripts(connection);
  const jobKey = (jobId: string) => bulkJobKey(prefix, jobId);

  return {
    /** Stages one input chunk; it expires with the job, so an abandoned submission cleans itself up. */
    async stageChunk(jobId: string, chunk: number, data: Buffer, expiresAt: number): Promise<void> {
      await redis.set(bulkInputKey(prefix, jobId, chunk), data, 'PXAT', expiresAt);
    },

    /** Deletes staged input chunks [0, chunks) of a job that will not run. */
    async dropStagedChunks(jobId: string, chunks: number): Promise<void> {
      const BATCH = 1000;
      for (let from = 0; from < chunks; from += BATCH) {
        const keys: string[] = [];
        for (let c = from; c < Math.min(chunks, from + BATCH); c++) keys.push(bulkInputKey(prefix, jobId, c));
        await redis.unlink(...keys);
      }
    },

    async createJob(job: NewBulkJob): Promise<void> {
      await redis
        .multi()
        .hset(jobKey(job.jobId), {
          status: 'queued',
          owner: job.owner,
          total: job.total,
          done: 0,
          chunks: job.chunks,
          chunk_size: job.chunkSize,
          created_at: job.createdAt,
          expires_at: job.expiresAt,
          model_name: job.modelName ?? 'fraud',
          encoding: job.encoding ?? 'columns',
          ...(job.modelVersionNumber == null ? {} : { model_version_number: job.modelVersionNumber }),
          ...(job.modelVersion == null ? {} : { model_version: job.modelVersion }),
        })
        .pexpireat(jobKey(job.jobId), job.expiresAt)
        .exec();
    },

    async deleteJob(jobId: string): Promise<void> {
      await redis.unlink(jobKey(jobId));
    },

    async readJob(jobId: string): Promise<BulkJobState | null> {
      const h = await redis.hgetall(jobKey(jobId));
      if (!h.status) return null;
      return {
        jobId,
        status: h.status as JobStatusName,
        owner: h.owner ?? '',
        total: Number(h.total),
        done: Number(h.done),
        chunks: Number(h.chunks),
        chunkSize: Number(h.chunk_size),
        modelVersion: h.model_version ?? null,
        modelName: h.model_name ?? 'fraud',
        modelVersionNumber: optionalNumber(h.model_version_number),
        encoding: h.encoding === 'rows' ? 'rows' : 'columns',
        scoredBy: Object.fromEntries(
          Object.entries(h)
            .filter(([k]) => k.startsWith(SCORED_BY))
            .map(([k, v]) => [k.slice(SCORED_BY.length), Number(v)]),
        ),
        createdAt: Number(h.created_at),
        startedAt: optionalNumber(h.started_at),
        finishedAt: optionalNumber(h.finished_at),
        expiresAt: Number(h.expires_at),
        error: h.error ?? null,
      };
    },

    /**
     * Claims an Idempotency-Key for a job. Returns the job id the key belongs to: jobId when the
     * claim won, another job's id when that key was claimed first.
     */
    async claimIdempotencyKey(owner: string, keyDigest: string, jobId: string, expiresAt: number): Promise<string> {
      const key = bulkIdempotencyKey(prefix, owner, keyDigest);
      const claimed = await redis.set(key, jobId, 'PXAT', expiresAt, 'NX');
      if (claimed === 'OK') return jobId;
      return (await redis.get(key)) ?? jobId;
    },

    async findIdempotentJob(owner: string, keyDigest: string): Promise<string | null> {
      return redis.get(bulkIdempotencyKey(prefix, owner, keyDigest));
    },

    async releaseIdempotencyKey(owner: string, keyDigest: string): Promise<void> {
      await redis.unlink(bulkIdempotencyKey(prefix, owner, keyDigest));
    },

    /** Takes a chunk for scoring (marking its job running), or says why it is not to be scored. */
    async claimChunk(jobId: string, chunk: number, now: number): Promise<ChunkClaim> {
      const [what, input] = await redis.bulkClaimChunkBuffer(
        jobKey(jobId),
        bulkInputKey(prefix, jobId, chunk),
        bulkResultKey(prefix, jobId, chunk),
        now,
      );
      const outcome = what.toString();
      switch (outcome) {
        case 'claimed':
          if (!input) throw new Error(`claim of chunk ${chunk} of job ${jobId} came back without its input`);
          return { outcome, input };
        case 'scored':
        case 'missing':
        case 'gone':
          return { outcome };
        default:
          return { outcome: 'finished', status: JobStatusNameSchema.parse(outcome) };
      }
    },

    /** Writes a chunk's results, its job's progress and the records-scored count at once, idempotently. */
    async commitChunk(jobId: string, chunk: number, results: Buffer, rows: number, modelVersion: string, now: number): Promise<CommitOutcome> {
      const code = await redis.bulkCommitChunk(
        jobKey(jobId),
        bulkResultKey(prefix, jobId, chunk),
        bulkInputKey(prefix, jobId, chunk),
        recordsScoredKey(prefix),
        results,
        rows,
        now,
        modelVersion,
      );
      const outcome = (Object.keys(COMMIT_OUTCOMES) as CommitOutcome[]).find((k) => COMMIT_OUTCOMES[k] === code);
      if (!outcome) throw new Error(`unexpected commit outcome ${code}`);
      return outcome;
    },

    async readResultChunk(jobId: string, chunk: number): Promise<Buffer | null> {
      return redis.getBuffer(bulkResultKey(prefix, jobId, chunk));
    },

    /** The version a job is pinned to: `version` when none was yet, else the one pinned first; null when gone. */
    async pinVersion(jobId: string, version: number): Promise<number | null> {
      const pinned = await redis.bulkPinVersion(jobKey(jobId), version);
      return pinned === null ? null : Number(pinned);
    },

    /** queued | running → failed with a reason. Returns the status after the call; null when gone. */
    async failJob(jobId: string, reason: string, now: number): Promise<JobStatusName | null> {
      return (await redis.bulkFinishJob(jobKey(jobId), 'failed', now, reason)) as JobStatusName | null;
    },

    /** queued | running → cancelled. Returns the status after the call; null when gone. */
    async cancelJob(jobId: string, now: number): Promise<JobStatusName | null> {
      return (await redis.bulkFinishJob(jobKey(jobId), 'cancelled', now, '')) as JobStatusName | null;
    },
  };
}

export type BulkStore = ReturnType<typeof createBulkStore>;
