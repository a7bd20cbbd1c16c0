// Workers announce themselves with a heartbeat so the api knows which are live and what each
// holds of the model repository. A worker missing three heartbeats no longer counts.
import type { RedisClient } from './redis.ts';
import { publishMessages } from './pubsub.ts';
import { modelsChangedChannel, workerModelsKey, workerSnapshotsKey, workersKey } from './keys.ts';
import type { RepositorySnapshot } from './model-catalog.ts';

export const HEARTBEAT_INTERVAL_MS = 5_000;
const LIVE_WINDOW_MS = 3 * HEARTBEAT_INTERVAL_MS;

export type Heartbeat = {
  /** What /ready lists as the fraud model version (the display version a /predict reply names), or 'none'. */
  modelVersion: string;
  /** What the worker holds; stored beside the heartbeat so the api reads both in one round trip. */
  snapshot: RepositorySnapshot;
};

export async function recordHeartbeat(redis: RedisClient, prefix: string, workerId: string, beat: Heartbeat): Promise<void> {
  // One MULTI: the keys share the {shared} tag, so on a cluster they share a slot.
  await redis
    .multi()
    .zadd(workersKey(prefix), Date.now(), workerId)
    .hset(workerModelsKey(prefix), workerId, beat.modelVersion)
    .hset(workerSnapshotsKey(prefix), workerId, JSON.stringify(beat.snapshot))
    .exec();
}

/** A heartbeat now, and a message that tells every api to read the snapshots again without waiting. */
export async function announceChange(redis: RedisClient, prefix: string, workerId: string, beat: Heartbeat): Promise<void> {
  await recordHeartbeat(redis, prefix, workerId, beat);
  await publishMessages(redis, [[modelsChangedChannel(prefix), workerId]]);
}

export async function removeWorker(redis: RedisClient, prefix: string, workerId: string): Promise<void> {
  await redis.multi().zrem(workersKey(prefix), workerId).hdel(workerModelsKey(prefix), workerId).hdel(workerSnapshotsKey(prefix), workerId).exec();
  await publishMessages(redis, [[modelsChangedChannel(prefix), workerId]]);
}

export type LiveWorker = { id: string; modelVersion: string; snapshot: RepositorySnapshot | undefined };

export async function readLiveWorkers(redis: RedisClient, prefix: string): Promise<LiveWorker[]> {
  const ids = await redis.zrangebyscore(workersKey(prefix), Date.now() - LIVE_WINDOW_MS, '+inf');
  if (ids.length === 0) return [];
  const [versions, snapshots] = await Promise.all([redis.hmget(workerModelsKey(prefix), ...ids), redis.hmget(workerSnapshotsKey(prefix), ...ids)]);
  return ids.map((id, i) => ({ id, modelVersion: versions[i] ?? 'unknown', snapshot: parseSnapshot(snapshots[i]) }));
}

// A snapshot a worker of another release wrote, or a half-written one, is read as none.
function parseSnapshot(text: string | null | undefined): RepositorySnapshot | undefined {
  if (!text) return undefined;
  try {
    const value = JSON.parse(text) as RepositorySnapshot;
    return Array.isArray(value.models) ? value : undefined;
  } catch {
    return undefined;
  }
}
