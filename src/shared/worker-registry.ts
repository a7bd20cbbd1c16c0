// Workers announce themselves with a heartbeat so the api's /ready can say how many are live
// and which model version they serve. A worker missing three heartbeats no longer counts.
import type { RedisClient } from './redis.ts';
import { workerModelsKey, workersKey } from './keys.ts';

export const HEARTBEAT_INTERVAL_MS = 5_000;
const LIVE_WINDOW_MS = 3 * HEARTBEAT_INTERVAL_MS;

export async function recordHeartbeat(redis: RedisClient, prefix: string, workerId: string, modelVersion: string): Promise<void> {
  await redis
    .multi()
    .zadd(workersKey(prefix), Date.now(), workerId)
    .hset(workerModelsKey(prefix), workerId, modelVersion)
    .exec();
}

export async function removeWorker(redis: RedisClient, prefix: string, workerId: string): Promise<void> {
  await redis.multi().zrem(workersKey(prefix), workerId).hdel(workerModelsKey(prefix), workerId).exec();
}

export async function readLiveWorkers(redis: RedisClient, prefix: string): Promise<{ id: string; modelVersion: string }[]> {
  const ids = await redis.zrangebyscore(workersKey(prefix), Date.now() - LIVE_WINDOW_MS, '+inf');
  if (ids.length === 0) return [];
  const versions = await redis.hmget(workerModelsKey(prefix), ...ids);
  return ids.map((id, i) => ({ id, modelVersion: versions[i] ?? 'unknown' }));
}
