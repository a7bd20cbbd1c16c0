// Every Redis key the service writes outside BullMQ's own, built in one place. Every key holds a
// hash tag ({…}): on a Redis Cluster the keys one command, MULTI or Lua script touches share a
// slot, and the tags spread what need not be together over the masters. BullMQ's keys are tagged
// by queue shard (queues.ts, shardQueueName).

/**
 * Pub/sub channel on which workers answer the online calls of one api process. Tagged by the
 * api's id: on a cluster the channel is sharded (SPUBLISH), so a reply goes to the one master
 * serving its slot, and the apis' channels spread over the masters.
 */
export function replyChannel(prefix: string, apiId: string): string {
  return `${prefix}:reply:{${apiId}}`;
}

// The small keys every process shares (the worker registry, the records-scored counter) sit
// under one tag: a heartbeat writes three of them in one MULTI.

/** Sorted set of live workers: member `${workerId}`, score = last heartbeat (epoch ms). */
export function workersKey(prefix: string): string {
  return `${prefix}:{shared}:workers`;
}

/** Hash workerId → model version, beside workersKey. */
export function workerModelsKey(prefix: string): string {
  return `${prefix}:{shared}:worker-models`;
}

/** Counter: records scored by all workers, ever; the api derives the scoring rate from it. */
export function recordsScoredKey(prefix: string): string {
  return `${prefix}:{shared}:stats:records-scored`;
}

/** Hash workerId → the worker's RepositorySnapshot (JSON): what it holds of the model repository. */
export function workerSnapshotsKey(prefix: string): string {
  return `${prefix}:{shared}:worker-snapshots`;
}

/**
 * Pub/sub channel a worker publishes on when what it holds changes, so apis refresh at once. On
 * a cluster it is a sharded channel (pubsub.ts), under the registry's tag.
 */
export function modelsChangedChannel(prefix: string): string {
  return `${prefix}:{shared}:models-changed`;
}

// A bulk job's keys share the hash tag {jobId}, so a Lua script may touch all of them on one
// Redis Cluster slot. Every one of them expires at the job's expires_at (PEXPIREAT).

/** Hash: a bulk job's state (status, owner, progress, timestamps). */
export function bulkJobKey(prefix: string, jobId: string): string {
  return `${prefix}:bulk:{${jobId}}`;
}

/** String: one staged input chunk (bulk-chunk codec), deleted once its results are written. */
export function bulkInputKey(prefix: string, jobId: string, chunk: number): string {
  return `${prefix}:bulk:{${jobId}}:in:${chunk}`;
}

/** String: one chunk's results (bulk-chunk results codec), written once (SET NX). */
export function bulkResultKey(prefix: string, jobId: string, chunk: number): string {
  return `${prefix}:bulk:{${jobId}}:out:${chunk}`;
}

/** String: Idempotency-Key → job id, per owner; keyDigest is a hash of the client's key. Tagged by the digest: keys spread over the masters. */
export function bulkIdempotencyKey(prefix: string, owner: string, keyDigest: string): string {
  return `${prefix}:bulk-idem:${owner}:{${keyDigest}}`;
}

/**
 * Sorted set: the bulk jobs of one owner, member job id, score created_at (epoch ms), for GET /jobs.
 * Members outlive their jobs until a listing meets them; the key expires with the newest job.
 * Tagged by the owner: the owners' listings spread over the masters, apart from their jobs' slots.
 */
export function bulkOwnerJobsKey(prefix: string, owner: string): string {
  return `${prefix}:bulk-owner:{${owner}}:jobs`;
}

/**
 * Set: the owner's bulk jobs that may still have records waiting (queued, running or staging).
 * Members leave when a read finds their job over or gone (tenant-backlog.ts). Beside the owner's listing.
 */
export function bulkOwnerActiveKey(prefix: string, owner: string): string {
  return `${prefix}:bulk-owner:{${owner}}:active`;
}

/** Set: owners that may have bulk jobs waiting, for the per-owner backlog gauge. */
export function bulkOwnersKey(prefix: string): string {
  return `${prefix}:{shared}:bulk-owners`;
}

/** String: the fair-share clock of one priority level of the bulk queue: the tag of the newest chunk taken (fair-share.ts). */
export function bulkClockKey(prefix: string, level: string): string {
  return `${prefix}:{shared}:bulk-clock:${level}`;
}

/** A model's stream of shadow comparisons (the last SHADOW_STREAM_LENGTH records at least): GET /models/{name}/shadow summarises it. */
export function shadowStreamKey(prefix: string, model: string): string {
  return `${prefix}:shadow:{${model}}`;
}

/** Integer: records ever compared for a model, the id of its stream's newest entry (shadow-stream.ts); same slot as the stream. */
export function shadowCountKey(prefix: string, model: string): string {
  return `${prefix}:shadow:{${model}}:count`;
}
