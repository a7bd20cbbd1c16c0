// Every Redis key the service writes outside BullMQ's own, built in one place.

/** Pub/sub channel on which workers answer the online calls of one api process. */
export function replyChannel(prefix: string, apiId: string): string {
  return `${prefix}:reply:${apiId}`;
}

/** Sorted set of live workers: member `${workerId}`, score = last heartbeat (epoch ms). */
export function workersKey(prefix: string): string {
  return `${prefix}:workers`;
}

/** Hash workerId → model version, beside workersKey. */
export function workerModelsKey(prefix: string): string {
  return `${prefix}:worker-models`;
}

/** Hash workerId → the worker's RepositorySnapshot (JSON): what it holds of the model repository. */
export function workerSnapshotsKey(prefix: string): string {
  return `${prefix}:worker-snapshots`;
}

/** Pub/sub channel a worker publishes on when what it holds changes, so apis refresh at once. */
export function modelsChangedChannel(prefix: string): string {
  return `${prefix}:models-changed`;
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

/** String: Idempotency-Key → job id, per owner; keyDigest is a hash of the client's key. */
export function bulkIdempotencyKey(prefix: string, owner: string, keyDigest: string): string {
  return `${prefix}:bulk-idem:${owner}:${keyDigest}`;
}

/** Counter: records scored by all workers, ever; the api derives the scoring rate from it. */
export function recordsScoredKey(prefix: string): string {
  return `${prefix}:stats:records-scored`;
}
