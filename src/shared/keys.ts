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
