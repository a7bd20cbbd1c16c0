// Redis connections, made one way, to a single Redis (REDIS_URL) or a Redis Cluster
// (REDIS_CLUSTER_NODES). Following BullMQ's production guide: producers (the api) fail fast when
// Redis is away, so a request gets 503 at once instead of hanging; consumers (workers,
// subscribers) wait and retry for as long as it takes.
import { Cluster, Redis, type ClusterOptions, type RedisOptions } from 'ioredis';
import type { LogSink } from './logger.ts';

/** A connection to either kind of Redis; both speak the same commands for keys of one slot. */
export type RedisClient = Redis | Cluster;

export type RedisNode = { host: string; port: number };
/** Where Redis is: cluster mode when clusterNodes is not empty, else the single Redis at url. */
export type RedisTarget = { url: string; clusterNodes: readonly RedisNode[] };

/** subscriber: a consumer that only (S)SUBSCRIBEs; on a cluster it keeps one connection per master for sharded pub/sub. */
export type RedisRole = 'producer' | 'consumer' | 'subscriber';

export function isClusterTarget(target: RedisTarget): boolean {
  return target.clusterNodes.length > 0;
}

/** Where a target points, for log lines (no credentials). */
export function describeTarget(target: RedisTarget): string {
  if (isClusterTarget(target)) return `Redis Cluster ${target.clusterNodes.map((n) => `${n.host}:${n.port}`).join(',')}`;
  const url = new URL(target.url);
  return `Redis ${url.host}`;
}

// Reconnect forever, backing off to one try a second.
const retryDelay = (attempt: number) => Math.min(attempt * 100, 1000);

/** A URL alone is a single Redis. */
export function createRedis(where: RedisTarget | string, role: RedisRole, name: string): RedisClient {
  const target: RedisTarget = typeof where === 'string' ? { url: where, clusterNodes: [] } : where;
  const failFast = role === 'producer';
  const node: RedisOptions = {
    connectionName: name,
    // BullMQ requires null on connections that run blocking commands.
    maxRetriesPerRequest: failFast ? 1 : null,
  };
  if (!isClusterTarget(target)) {
    return new Redis(target.url, { ...node, enableOfflineQueue: !failFast, retryStrategy: retryDelay });
  }
  // A managed cluster wants a password and TLS: REDIS_URL's credentials and scheme (rediss://)
  // apply to every node; its host is not used.
  const url = new URL(target.url);
  if (url.username) node.username = decodeURIComponent(url.username);
  if (url.password) node.password = decodeURIComponent(url.password);
  if (url.protocol === 'rediss:') node.tls = {};
  const options: ClusterOptions = {
    // The cluster client's own queue for commands sent while it is not ready. Per node the
    // offline queue stays on: ioredis opens node connections lazily, on their first command.
    enableOfflineQueue: !failFast,
    clusterRetryStrategy: retryDelay,
    // SSUBSCRIBE must reach the master serving the channel's slot, on a connection of its own.
    shardedSubscribers: role === 'subscriber',
    redisOptions: node,
  };
  return new Cluster([...target.clusterNodes], options);
}

export function isRedisReady(redis: RedisClient): boolean {
  return redis.status === 'ready';
}

/**
 * Says when a connection cannot reach Redis and when it can again: one warn line per outage
 * (a process started before its Redis waits, and its log says what for), not one per retry.
 */
export function reportReachability(redis: RedisClient, target: RedisTarget, logger: LogSink, what: string): void {
  let waiting = false;
  let everReady = false;
  const down = () => {
    if (waiting) return;
    waiting = true;
    logger.warn(
      { redis: describeTarget(target), connection: what },
      everReady ? 'Redis unreachable; reconnecting' : 'Redis unreachable; waiting for it before serving',
    );
  };
  redis.on('error', down);
  redis.on('reconnecting', down);
  redis.on('ready', () => {
    if (waiting) logger.warn({ redis: describeTarget(target), connection: what }, 'Redis reachable; serving');
    waiting = false;
    everReady = true;
  });
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
/** On a cluster, INFO goes to one node: its memory stands for all (masters are sized alike). */
export async function readRedisMemory(redis: RedisClient): Promise<RedisMemory> {
  const info = await redis.info('memory');
  const field = (name: string) => Number(new RegExp(`^${name}:(\\d+)`, 'm').exec(info)?.[1] ?? 0);
  const usedBytes = field('used_memory');
  const maxBytes = field('maxmemory');
  return { usedBytes, maxBytes, full: maxBytes > 0 && usedBytes >= maxBytes };
}
