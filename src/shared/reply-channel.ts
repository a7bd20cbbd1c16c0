// The reply protocol of online calls, both halves: an api subscribes to its own channel and a
// worker publishes a batch's replies there, once per api process it serves (see
// online-dispatcher.ts for why replies do not travel through BullMQ).
// On a Redis Cluster the channel is a sharded one (pubsub.ts), so reply traffic does not grow
// with the cluster.
import { z } from 'zod';
import { replyChannel } from './keys.ts';
import { OnlineReplySchema, type OnlineReply } from './queues.ts';
import type { LogSink } from './logger.ts';
import type { RedisClient } from './redis.ts';
import { publishMessages, subscribeChannel } from './pubsub.ts';

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
  return subscribeChannel(
    subscriber,
    channel,
    (message) => {
      const parsed = parseReplyMessage(message);
      if (!parsed) {
        logger.error({ channel }, 'malformed reply message');
        return;
      }
      for (const reply of parsed.replies) onReply(reply);
    },
    logger,
  );
}

/**
 * A worker of this service wrote the message (publishReplies, typed by ReplyMessage), so only its
 * envelope is checked: each reply's call id and status. The records' outputs are the model's and
 * travel as they are to the serializer, not through a schema again.
 */
function parseReplyMessage(message: string): ReplyMessage | undefined {
  let parsed: { replies?: unknown } | null;
  try {
    parsed = JSON.parse(message) as { replies?: unknown } | null;
  } catch {
    return undefined;
  }
  if (!Array.isArray(parsed?.replies)) return undefined;
  for (const reply of parsed.replies as { call_id?: unknown; status?: unknown }[]) {
    if (typeof reply?.call_id !== 'string' || typeof reply.status !== 'string' || !REPLY_STATUSES.has(reply.status)) return undefined;
  }
  return parsed as ReplyMessage;
}

const REPLY_STATUSES: ReadonlySet<string> = new Set(OnlineReplySchema.options.map((o) => o.shape.status.value));

/**
 * One message per api channel: however many calls a batch holds, one message per api. On a
 * single Redis the messages go in one pipeline; on a cluster each goes to its channel's shard.
 */
export async function publishReplies(publisher: RedisClient, byChannel: ReadonlyMap<string, OnlineReply[]>): Promise<void> {
  await publishMessages(
    publisher,
    [...byChannel].map(([channel, replies]) => [channel, JSON.stringify({ replies } satisfies ReplyMessage)] as const),
  );
}
