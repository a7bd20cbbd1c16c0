// The reply protocol of online calls, both halves: an api subscribes to its own channel and a
// worker publishes a batch's replies there, once per api process it serves (see
// online-dispatcher.ts for why replies do not travel through BullMQ).
import { z } from 'zod';
import type { ChainableCommander, Redis } from 'ioredis';
import { replyChannel } from './keys.ts';
import { OnlineReplySchema, type OnlineReply } from './queues.ts';
import type { LogSink } from './logger.ts';

/** What a worker publishes on an api's reply channel: the replies of one batch for that api. */
export const ReplyMessageSchema = z.object({ replies: z.array(OnlineReplySchema) });
export type ReplyMessage = z.infer<typeof ReplyMessageSchema>;

export { replyChannel };

/**
 * Subscribes `subscriber` (a connection of its own: a subscribed ioredis connection can do nothing
 * else) to `channel` and hands every well-formed reply to onReply. Returns the unsubscribe.
 */
export function subscribeReplies(
  subscriber: Redis,
  channel: string,
  onReply: (reply: OnlineReply) => void,
  logger: LogSink,
): () => Promise<void> {
  subscriber.on('message', (from: string, message: string) => {
    if (from !== channel) return;
    const parsed = parseReplyMessage(message);
    if (!parsed) {
      logger.error({ channel }, 'malformed reply message');
      return;
    }
    for (const reply of parsed.replies) onReply(reply);
  });
  // Resolves once subscribed; while Redis is away ioredis re-subscribes when it returns.
  subscriber.subscribe(channel).catch((err: unknown) => {
    logger.warn({ err }, 'reply channel subscription failed; ioredis will retry');
  });
  return async () => {
    await subscriber.unsubscribe(channel).catch(() => undefined);
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

/** Queues one PUBLISH per api channel on `pipeline`: however many calls a batch holds, one message per api. */
export function publishReplies(pipeline: ChainableCommander, byChannel: ReadonlyMap<string, OnlineReply[]>): void {
  for (const [channel, replies] of byChannel) {
    const message: ReplyMessage = { replies };
    pipeline.publish(channel, JSON.stringify(message));
  }
}
