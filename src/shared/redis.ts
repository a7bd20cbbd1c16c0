// Redis connections, made one way. Following BullMQ's production guide: producers (the api)
// fail fast when Redis is away, so a request gets 503 at once instead of hanging; consumers
// (workers, subscribers) wait and retry for as long as it takes.
import { Redis, type RedisOptions } from 'ioredis';

export type RedisRole = 'producer' | 'consumer';

export function createRedis(url: string, role: RedisRole, name: string): Redis {
  const options: RedisOptions = {
    connectionName: name,
    // BullMQ requires null on connections that run blocking commands.
    maxRetriesPerRequest: role === 'consumer' ? null : 1,
    enableOfflineQueue: role === 'consumer',
    // Reconnect forever, backing off to one try a second.
    retryStrategy: (attempt) => Math.min(attempt * 100, 1000),
  };
  return new Redis(url, options);
}

export function isRedisReady(redis: Redis): boolean {
  return redis.status === 'ready';
}

/** True when the Redis at url answers PING within about a second; never throws, never retries. */
export async function redisAnswers(url: string): Promise<boolean> {
  const probe = new Redis(url, { lazyConnect: true, connectTimeout: 1000, maxRetriesPerRequest: 0, retryStrategy: () => null });
  probe.on('error', () => undefined);
  try {
    await probe.connect();
    return (await probe.ping()) === 'PONG';
  } catch {
    return false;
  } finally {
    probe.disconnect();
  }
}

/**
 * True when Redis refused a write because it reached `maxmemory` (under `noeviction`, the policy
 * BullMQ requires). Redis marks it with the `OOM` error prefix; in a MULTI the refusal of each
 * queued command comes back inside EXECABORT's `previousErrors` (ioredis), and a script that
 * tried to write carries the same prefix. The one place that recognises it.
 */
export function isRedisOutOfMemory(err: unknown): boolean {
  if (!(err instanceof Error)) return false;
  if (err.name === 'ReplyError' && /^OOM\b/.test(err.message)) return true;
  const previous = (err as Error & { previousErrors?: unknown[] }).previousErrors;
  return Array.isArray(previous) && previous.some(isRedisOutOfMemory);
}

export type RedisMemory = { usedBytes: number; maxBytes: number; full: boolean };

/** Redis's memory use against its maxmemory (0: no limit), from INFO memory. Full: writes are being refused. */
export async function readRedisMemory(redis: Redis): Promise<RedisMemory> {
  const info = await redis.info('memory');
  const field = (name: string) => Number(new RegExp(`^${name}:(\\d+)`, 'm').exec(info)?.[1] ?? 0);
  const usedBytes = field('used_memory');
  const maxBytes = field('maxmemory');
  return { usedBytes, maxBytes, full: maxBytes > 0 && usedBytes >= maxBytes };
}
