// The reply protocol of online calls, both halves: an api subscribes to its own channel and a
// worker publishes a batch's replies there, once per api process it serves (see
// online-dispatcher.ts for why replies do not travel through BullMQ).
//
// On a Redis Cluster the channel is a sharded one (SSUBSCRIBE/SPUBLISH, Redis >= 7): a message
// goes to the master serving the channel's slot (and its replicas), not over the cluster bus to
// every node as a classic PUBLISH does, so reply traffic does not grow with the cluster. A
// single Redis keeps PUBLISH/SUBSCRIBE, which Redis 6.2 has.
import { z } from 'zod';
import { replyChannel } from './keys.ts';
import { OnlineReplySchema, type OnlineReply } from './queues.ts';
import type { LogSink } from './logger.ts';
import type { RedisClient } from './redis.ts';

/** What a worker publishes on an api's reply channel: the replies of one batch for that api. */
export const ReplyMessageSchema = z.object({ replies: z.array(OnlineReplySchema) });
export type ReplyMessage = z.infer<typeof ReplyMessageSchema>;

export { replyChannel };

/**
 * Subscribes `subscriber` (a connection of its own: a subscribed ioredis connection can do nothing
 * else; on a cluster, made with the 'subscriber' role) to `channel` and hands every well-formed
 * reply to onReply. Returns the unsubscribe.
 */
export function subscribeReplies(
  subscriber: RedisClient,
  channel: string,
  onReply: (reply: OnlineReply) => void,
  logger: LogSink,
): () => Promise<void> {
  const sharded = subscriber.isCluster;
  subscriber.on(sharded ? 'smessage' : 'message', (from: string, message: string) => {
    if (from !== channel) return;
    const parsed = parseReplyMessage(message);
    if (!parsed) {
      logger.error({ channel }, 'malformed reply message');
      return;
    }
    for (const reply of parsed.replies) onReply(reply);
  });
  // Resolves once subscribed; while Redis is away (or a master fails over) ioredis re-subscribes when it returns.
  (sharded ? subscriber.ssubscribe(channel) : subscriber.subscribe(channel)).catch((err: unknown) => {
    logger.warn({ err }, 'reply channel subscription failed; ioredis will retry');
  });
  return async () => {
    await (sharded ? subscriber.sunsubscribe(channel) : subscriber.unsubscribe(channel)).catch(() => undefined);
  };
}

function parseReplyMessage(message: string): ReplyMessage | undefined {
  try {
    const parsed = ReplyMessageSchema.safeParse(JSON.parse(message));
    return parsed.success ? parsed.data : undefined;
  } catch {
    return undefined;
  }
}

/**
 * One message per api channel: however many calls a batch holds, one message per api. On a
 * single Redis the messages go in one pipeline; on a cluster each goes to its channel's shard.
 */
export async function publishReplies(publisher: RedisClient, byChannel: ReadonlyMap<string, OnlineReply[]>): Promise<void> {
  const messages = [...byChannel].map(([channel, replies]): [string, string] => [channel, JSON.stringify({ replies } satisfies ReplyMessage)]);
  if (publisher.isCluster) {
    await Promise.all(messages.map(([channel, message]) => publisher.spublish(channel, message)));
    return;
  }
  const pipeline = publisher.pipeline();
  for (const [channel, message] of messages) pipeline.publish(channel, message);
  await pipeline.exec();
}
