// Pub/sub the same way on both kinds of Redis. On a Redis Cluster every channel is a sharded one
// (SSUBSCRIBE/SPUBLISH, Redis >= 7): a message goes to the master serving the channel's slot (and
// its replicas), not over the cluster bus to every node as a classic PUBLISH does, and ioredis
// keeps one subscriber per master that follows the slots through a failover. A single Redis keeps
// PUBLISH/SUBSCRIBE, which Redis 6.2 has. Channel names carry a hash tag (keys.ts).
import type { LogSink } from './logger.ts';
import type { RedisClient } from './redis.ts';

/**
 * Subscribes `subscriber` (a connection of its own: a subscribed ioredis connection can do nothing
 * else; on a cluster, made with the 'subscriber' role) to `channel`, handing each message on it to
 * onMessage. Several channels may share the connection: each handler sees only its own channel.
 * Returns the unsubscribe.
 */
export function subscribeChannel(
  subscriber: RedisClient,
  channel: string,
  onMessage: (message: string) => void,
  logger: LogSink,
): () => Promise<void> {
  const sharded = subscriber.isCluster;
  subscriber.on(sharded ? 'smessage' : 'message', (from: string, message: string) => {
    if (from === channel) onMessage(message);
  });
  // Resolves once subscribed; while Redis is away (or a master fails over) ioredis re-subscribes when it returns.
  (sharded ? subscriber.ssubscribe(channel) : subscriber.subscribe(channel)).catch((err: unknown) => {
    logger.warn({ err, channel }, 'channel subscription failed; ioredis will retry');
  });
  return async () => {
    await (sharded ? subscriber.sunsubscribe(channel) : subscriber.unsubscribe(channel)).catch(() => undefined);
  };
}

/** Publishes every [channel, message]: on a single Redis in one pipeline, on a cluster each to its channel's shard. */
export async function publishMessages(publisher: RedisClient, messages: readonly (readonly [string, string])[]): Promise<void> {
  if (messages.length === 0) return;
  if (publisher.isCluster) {
    await Promise.all(messages.map(([channel, message]) => publisher.spublish(channel, message)));
    return;
  }
  const pipeline = publisher.pipeline();
  for (const [channel, message] of messages) pipeline.publish(channel, message);
  await pipeline.exec();
}
