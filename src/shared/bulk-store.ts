// The one owner of a bulk job's state in Redis: its hash, staged input chunks, result chunks and
// idempotency key. The api creates, reads and cancels jobs; the worker moves them along. Every
// transition is one Lua script, so two workers (or a worker and a DELETE) cannot interleave, and
// every key of a job expires at the same instant, expires_at (PEXPIREAT), never lazily.
import type { Cluster, Redis } from 'ioredis';
import keySlot from 'cluster-key-slot';
import type { RedisClient } from './redis.ts';
import {
  bulkIdempotencyKey,
  bulkInputKey,
  bulkJobKey,
  bulkOwnerActiveKey,
  bulkOwnerJobsKey,
  bulkOwnersKey,
  bulkResultKey,
  recordsScoredKey,
} from './keys.ts';
import { JobStatusNameSchema, type JobCursor, type JobStatusName } from './schemas/bulk-job.ts';
import type { BulkChunkEncoding } from './queues.ts';
import { DEFAULT_MODEL_NAME } from './config.ts';
import type { JobPriority } from './fair-share.ts';

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
  /** The model the job is for (jobs made before models were named: DEFAULT_MODEL's default). */
  modelName: string;
  /** The version the job is pinned to; null until a worker pins a job submitted while none was live. */
  modelVersionNumber: number | null;
  /** The alias asked for at submission, kept while no version is pinned (a resumed job's chunks name it). */
  modelAlias: string | null;
  /** How its chunks are staged, and so how its results are read. */
  encoding: BulkChunkEncoding;
  /** The level its chunks are queued at (fair-share.ts). */
  priority: JobPriority;
  /** Records scored per display version: one entry when the pin held for every chunk. */
  scoredBy: Record<string, number>;
  createdAt: number;
  startedAt: number | null;
  finishedAt: number | null;
  expiresAt: number;
  error: string | null;
  /** Recorded but not yet wholly queued: invisible to clients, expires within the staging TTL. */
  staging: boolean;
};

/** Where a job sits in its owner's listing (created_at, then job id, both descending): a cursor. */
export type JobPosition = JobCursor;

/** A staging job opened while its body is still being read: its size is not known yet. */
export type OpenedBulkJob = {
  jobId: string;
  owner: string;
  chunkSize: number;
  createdAt: number;
  expiresAt: number;
  /** Until every chunk is queued, the job and its staged input expire at this instant. */
  stagingUntil: number;
  /** Default DEFAULT_MODEL's default. */
  modelName?: string;
  /** Default null: pinned by the first worker to take a chunk. */
  modelVersionNumber?: number | null;
  /** The pinned version's display version, when the api knows it at submission. */
  modelVersion?: string | null;
  /** The alias asked for, when no version could be pinned at submission. */
  modelAlias?: string | null;
  /** Default columns (the default model's). */
  encoding?: BulkChunkEncoding;
  /** Default normal. */
  priority?: JobPriority;
};

export type NewBulkJob = OpenedBulkJob & { total: number; chunks: number };

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
// completes the job, once it is no longer staging: while its body is read, a job's chunks are
// queued and scored as they are staged, but its total is not known (promotion completes a job
// whose chunks were all scored before it). The staged input is no longer needed once its results exist. Every key is
// under the job's hash tag, so on a Redis Cluster the script runs on one slot.
const COMMIT_CHUNK = `
local status = redis.call('HGET', KEYS[1], 'status')
if not status then return -1 end
if status ~= 'queued' and status ~= 'running' then return -2 end
local ttl = redis.call('PTTL', KEYS[1])
if ttl <= 0 then return -1 end
if not redis.call('SET', KEYS[2], ARGV[1], 'NX', 'PX', ttl) then return 0 end
redis.call('DEL', KEYS[3])
local done = redis.call('HINCRBY', KEYS[1], 'done', ARGV[2])
redis.call('HSET', KEYS[1], 'model_version', ARGV[4])
redis.call('HINCRBY', KEYS[1], 'scored_by:' .. ARGV[4], ARGV[2])
if status == 'queued' then redis.call('HSET', KEYS[1], 'status', 'running', 'started_at', ARGV[3]) end
if redis.call('HGET', KEYS[1], 'staging') == '1' then return 1 end
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

// Adds a job to its owner's listing. The listing key lives as long as its newest job: its expiry
// only ever moves later (PEXPIREAT with GT would say this, but needs Redis 7). A member whose
// job has expired is removed by the next listing that meets it.
// The same for the owner's set of active jobs (KEYS[2]), which the backlog and the quota read.
const INDEX_JOB = `
redis.call('ZADD', KEYS[1], ARGV[1], ARGV[2])
redis.call('SADD', KEYS[2], ARGV[2])
for i = 1, 2 do
  local ttl = redis.call('PTTL', KEYS[i])
  if ttl < 0 or ttl < tonumber(ARGV[3]) - tonumber(ARGV[4]) then redis.call('PEXPIREAT', KEYS[i], ARGV[3]) end
end
return 1`;

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

// staging → visible, once every chunk is queued (and its total is recorded): the job, its staged input and any results
// already written take the job's real expiry. A chunk with neither input nor result (the input
// expired: the upload outlived the staging TTL) cannot be scored, so the job ends failed instead.
// Chunk keys share the job's hash tag, so on a cluster they sit on KEYS[1]'s slot.
const PROMOTE_JOB = `
local status = redis.call('HGET', KEYS[1], 'status')
if not status then return false end
if redis.call('HGET', KEYS[1], 'staging') ~= '1' then return status end
local expires = ARGV[1]
local missing = false
for chunk = 0, tonumber(redis.call('HGET', KEYS[1], 'chunks')) - 1 do
  local input = KEYS[1] .. ':in:' .. chunk
  local output = KEYS[1] .. ':out:' .. chunk
  local kept = redis.call('PEXPIREAT', input, expires) + redis.call('PEXPIREAT', output, expires)
  if kept == 0 then missing = true end
end
redis.call('HDEL', KEYS[1], 'staging')
redis.call('PEXPIREAT', KEYS[1], expires)
if missing and (status == 'queued' or status == 'running') then
  redis.call('HSET', KEYS[1], 'status', 'failed', 'finished_at', ARGV[2], 'error', ARGV[3])
  return 'failed'
end
if status == 'running' and tonumber(redis.call('HGET', KEYS[1], 'done')) >= tonumber(redis.call('HGET', KEYS[1], 'total')) then
  redis.call('HSET', KEYS[1], 'status', 'completed', 'finished_at', ARGV[2])
  return 'completed'
end
return status`;

// An Idempotency-Key goes to jobId when it is free or still names a job that will never run
// (ARGV[3], a stale staging job); otherwise the job it names is the answer.
const CLAIM_IDEMPOTENCY_KEY = `
local current = redis.call('GET', KEYS[1])
if current and current ~= ARGV[3] then return current end
redis.call('SET', KEYS[1], ARGV[1], 'PXAT', ARGV[2])
return ARGV[1]`;

type ScriptedRedis = RedisClient & {
  bulkClaimChunkBuffer(job: string, input: string, out: string, now: number): Promise<[Buffer, Buffer?]>;
  bulkCommitChunk(job: string, out: string, input: string, result: Buffer, rows: number, now: number, modelVersion: string): Promise<number>;
  bulkPromoteJob(job: string, expiresAt: number, now: number, reason: string): Promise<string | null>;
  bulkClaimIdempotencyKey(key: string, jobId: string, expiresAt: number, replaceable: string): Promise<string>;
  bulkFinishJob(job: string, status: string, now: number, reason: string): Promise<string | null>;
  bulkIndexJob(ownerJobs: string, ownerActive: string, createdAt: number, jobId: string, expiresAt: number, now: number): Promise<number>;
  bulkPinVersion(job: string, version: number): Promise<string | null>;
};

function withScripts(redis: RedisClient): ScriptedRedis {
  // defineCommand sends EVALSHA and falls back to EVAL once per connection; redefining is harmless.
  redis.defineCommand('bulkClaimChunk', { numberOfKeys: 3, lua: CLAIM_CHUNK });
  redis.defineCommand('bulkCommitChunk', { numberOfKeys: 3, lua: COMMIT_CHUNK });
  redis.defineCommand('bulkFinishJob', { numberOfKeys: 1, lua: FINISH_JOB });
  redis.defineCommand('bulkPromoteJob', { numberOfKeys: 1, lua: PROMOTE_JOB });
  redis.defineCommand('bulkClaimIdempotencyKey', { numberOfKeys: 1, lua: CLAIM_IDEMPOTENCY_KEY });
  redis.defineCommand('bulkIndexJob', { numberOfKeys: 2, lua: INDEX_JOB });
  redis.defineCommand('bulkPinVersion', { numberOfKeys: 1, lua: PIN_VERSION });
  return redis as ScriptedRedis;
}

/** How long a chunk's commit may take to reach a replica before the chunk is retried. */
const REPLICATION_WAIT_MS = 2000;

/** The connection a Cluster client sends a key's commands on: its slot's master. */
function masterConnection(cluster: Cluster, key: string): Redis | undefined {
  const nodeKey = cluster.slots[keySlot(key)]?.[0];
  return cluster.nodes('master').find((node) => `${node.options.host}:${node.options.port}` === nodeKey);
}

function optionalNumber(value: string | undefined): number | null {
  return value === undefined || value === '' ? null : Number(value);
}

function openingFields(job: OpenedBulkJob) {
  return {
    status: 'queued',
    owner: job.owner,
    done: 0,
    chunk_size: job.chunkSize,
    created_at: job.createdAt,
    expires_at: job.expiresAt,
    staging: 1,
    model_name: job.modelName ?? DEFAULT_MODEL_NAME,
    encoding: job.encoding ?? 'columns',
    ...(job.modelVersionNumber == null ? {} : { model_version_number: job.modelVersionNumber }),
    ...(job.modelVersion == null ? {} : { model_version: job.modelVersion }),
    ...(job.modelAlias == null ? {} : { model_alias: job.modelAlias }),
    ...(job.priority === undefined ? {} : { priority: job.priority }),
  };
}

/** Redis access for bulk jobs under one key prefix. */
export function createBulkStore(connection: RedisClient, prefix: string) {
  const redis = withScripts(connection);
  const jobKey = (jobId: string) => bulkJobKey(prefix, jobId);
  // After the job exists, so a listing never meets a member before its job (and drops it as
  // expired). A separate step: the owner's key is not on the job's Redis Cluster slot.
  const indexJob = async (job: OpenedBulkJob) => {
    await redis.bulkIndexJob(
      bulkOwnerJobsKey(prefix, job.owner),
      bulkOwnerActiveKey(prefix, job.owner),
      job.createdAt,
      job.jobId,
      job.expiresAt,
      Date.now(),
    );
    await redis.sadd(bulkOwnersKey(prefix), job.owner);
  };

  return {
    /**
     * Stages one input chunk until expiresAt (the staging deadline): an upload that never becomes
     * a queued job leaves nothing behind for long. Promotion gives it the job's expiry.
     */
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

    /** Records a staging job in one go, its size known: the body was read before its first chunk was queued. */
    async createJob(job: NewBulkJob): Promise<void> {
      await redis
        .multi()
        .hset(jobKey(job.jobId), { ...openingFields(job), total: job.total, chunks: job.chunks })
        .pexpireat(jobKey(job.jobId), job.stagingUntil)
        .exec();
      await indexJob(job);
    },

    /**
     * An owner's jobs, newest first, from just after `after` (exclusive), in the order of
     * (created_at desc, job id desc). Yields members whose jobs have expired too: the caller
     * reads each job and hands the gone ones to forgetJobs.
     */
    async *ownerJobIds(owner: string, after: JobPosition | null, batch: number): AsyncGenerator<JobPosition> {
      const key = bulkOwnerJobsKey(prefix, owner);
      let position = after;
      for (;;) {
        const page: JobPosition[] = [];
        if (position) {
          // Jobs created in the same millisecond as the position, after it in job id order.
          const ties = await redis.zrange(key, position.createdAt, position.createdAt, 'BYSCORE', 'REV');
          for (const jobId of ties) if (jobId < position.jobId) page.push({ createdAt: position.createdAt, jobId });
        }
        const max = position ? `(${position.createdAt}` : '+inf';
        const older = await redis.zrange(key, max, '-inf', 'BYSCORE', 'REV', 'LIMIT', 0, batch, 'WITHSCORES');
        for (let i = 0; i < older.length; i += 2) page.push({ jobId: older[i]!, createdAt: Number(older[i + 1]) });
        if (page.length === 0) return;
        for (const entry of page) {
          position = entry;
          yield entry;
        }
      }
    },

    /** Removes expired jobs from their owner's listing. */
    async forgetJobs(owner: string, jobIds: readonly string[]): Promise<void> {
      if (jobIds.length === 0) return;
      // Two commands, not a MULTI: a Redis at maxmemory refuses every command queued in a
      // transaction, even one that frees memory, and this runs when a refused job is cleaned up.
      await redis.zrem(bulkOwnerJobsKey(prefix, owner), ...jobIds);
      await redis.srem(bulkOwnerActiveKey(prefix, owner), ...jobIds);
    },

    /**
     * What the owner has waiting: its jobs still queued or running (staging ones included), and
     * their records not yet scored (a job still reading its body counts what it has so far: none
     * until it knows its size). A job found over or gone leaves the set here, so the count falls
     * back to 0 once the owner's jobs are done, whoever ended them (a worker, a DELETE, expiry).
     */
    async ownerBacklog(owner: string): Promise<{ jobs: number; records: number }> {
      const activeKey = bulkOwnerActiveKey(prefix, owner);
      const ids = await redis.smembers(activeKey);
      // One read per job, not a pipeline: on a cluster the jobs sit on different slots.
      const states = await Promise.all(ids.map((id) => redis.hmget(jobKey(id), 'status', 'total', 'done')));
      const over: string[] = [];
      let records = 0;
      ids.forEach((id, i) => {
        const [status, total, done] = states[i]!;
        if (status !== 'queued' && status !== 'running') over.push(id);
        else if (total) records += Math.max(0, Number(total) - Number(done ?? 0));
      });
      if (over.length > 0) await redis.srem(activeKey, ...over);
      return { jobs: ids.length - over.length, records };
    },

    /**
     * Every owner with a backlog, and the backlog. Owners found with none leave the set, and are
     * given once more with an empty backlog: a gauge keeps a series' last value until told otherwise.
     */
    async backlogs(): Promise<Map<string, { jobs: number; records: number }>> {
      const owners = await redis.smembers(bulkOwnersKey(prefix));
      const out = new Map<string, { jobs: number; records: number }>();
      const idle: string[] = [];
      for (const owner of owners) {
        const backlog = await this.ownerBacklog(owner);
        if (backlog.jobs === 0) idle.push(owner);
        out.set(owner, backlog);
      }
      if (idle.length > 0) await redis.srem(bulkOwnersKey(prefix), ...idle);
      return out;
    },

    /**
     * Records a staging job before its body is read to the end, so its chunks can be queued (and
     * scored) as they are staged. Its total is unknown until sealJob; it cannot complete before.
     */
    async openJob(job: OpenedBulkJob): Promise<void> {
      await redis.multi().hset(jobKey(job.jobId), openingFields(job)).pexpireat(jobKey(job.jobId), job.stagingUntil).exec();
      // Listed from the moment it exists: listing skips staging jobs, and drops it once it is gone.
      await indexJob(job);
    },

    /** The size of an opened job, once its body is read: what its completion is counted against. */
    async sealJob(jobId: string, total: number, chunks: number): Promise<void> {
      await redis.hset(jobKey(jobId), { total, chunks });
    },

    /** Deletes the input and any results of chunks [0, chunks) of a job that will not run. */
    async dropJobChunks(jobId: string, chunks: number): Promise<void> {
      const BATCH = 500;
      for (let from = 0; from < chunks; from += BATCH) {
        const keys: string[] = [];
        for (let c = from; c < Math.min(chunks, from + BATCH); c++) keys.push(bulkInputKey(prefix, jobId, c), bulkResultKey(prefix, jobId, c));
        await redis.unlink(...keys);
      }
    },

    /**
     * Makes a staging job visible once all its chunks are queued. Returns its status after the
     * call ('failed' when staged input was missing), or null when the job is gone.
     */
    async promoteJob(jobId: string, expiresAt: number, now: number): Promise<JobStatusName | null> {
      const reason = 'the staged input expired before the job was queued (STAGING_TTL_SECONDS)';
      return (await redis.bulkPromoteJob(jobKey(jobId), expiresAt, now, reason)) as JobStatusName | null;
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
        modelName: h.model_name ?? DEFAULT_MODEL_NAME,
        modelVersionNumber: optionalNumber(h.model_version_number),
        modelAlias: h.model_alias ?? null,
        encoding: h.encoding === 'rows' ? 'rows' : 'columns',
        priority: h.priority === 'high' || h.priority === 'low' ? h.priority : 'normal',
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
        staging: h.staging === '1',
      };
    },

    /**
     * Claims an Idempotency-Key for a job. Returns the job id the key belongs to: jobId when the
     * claim won, another job's id when that key was claimed first. A key that names `replaceable`
     * (a job that will never run) is taken over.
     */
    async claimIdempotencyKey(
      owner: string,
      keyDigest: string,
      jobId: string,
      expiresAt: number,
      replaceable: string | null = null,
    ): Promise<string> {
      return redis.bulkClaimIdempotencyKey(bulkIdempotencyKey(prefix, owner, keyDigest), jobId, expiresAt, replaceable ?? '');
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

    /**
     * Writes a chunk's results and its job's progress at once, idempotently; then, for a new
     * write, adds its rows to the records-scored count. The count lives outside the job's slot,
     * so it moves in a command of its own: a worker that dies between the two leaves the rate
     * gauge one chunk short, never the job.
     */
    async commitChunk(jobId: string, chunk: number, results: Buffer, rows: number, modelVersion: string, now: number): Promise<CommitOutcome> {
      const code = await redis.bulkCommitChunk(
        jobKey(jobId),
        bulkResultKey(prefix, jobId, chunk),
        bulkInputKey(prefix, jobId, chunk),
        results,
        rows,
        now,
        modelVersion,
      );
      const outcome = (Object.keys(COMMIT_OUTCOMES) as CommitOutcome[]).find((k) => COMMIT_OUTCOMES[k] === code);
      if (!outcome) throw new Error(`unexpected commit outcome ${code}`);
      if (outcome === 'written') await redis.incrby(recordsScoredKey(prefix), rows);
      return outcome;
    },

    /**
     * On a Redis Cluster, resolves once a replica of the job's master holds every write this
     * connection made there (WAIT 1), and throws when none does in time, so the chunk is retried.
     * Why: the job's keys and the chunk's queue may sit on different masters. Replication is
     * asynchronous, so a failover of the job's master could lose a chunk's commit while BullMQ's
     * record that the chunk is done survives on the other: nothing would score it again and the
     * job would never finish. On a single Redis both are on one primary, and a replica holds a
     * prefix of its writes: if the chunk's completion survived, so did its commit. A master
     * without replicas cannot fail over: nothing to wait for.
     */
    async awaitReplica(jobId: string): Promise<void> {
      if (!redis.isCluster) return;
      const key = jobKey(jobId);
      const master = masterConnection(redis as Cluster, key);
      if (!master) throw new Error(`no master known for the slot of job ${jobId}`);
      const [role, , replicas] = (await master.role()) as [string, number, unknown[]];
      if (role !== 'master') throw new Error(`the node serving job ${jobId} is no longer a master`);
      if (replicas.length === 0) return;
      const acknowledged = Number(await master.call('WAIT', 1, REPLICATION_WAIT_MS));
      if (acknowledged < 1) throw new Error(`the results of job ${jobId} reached no replica within ${REPLICATION_WAIT_MS} ms`);
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
