// The queue catalog: each queue's name, the shape of its job data and replies, and its job
// options, shared by the producer (api) and the consumer (worker) so the two cannot drift.
import { z } from 'zod';
import type { JobsOptions } from 'bullmq';
import { FraudRecordSchema } from './schemas/record.ts';
import { DecisionSchema } from './schemas/prediction.ts';

/** One caller waiting on the api: its records and the moment it stops waiting. */
export const OnlineCallSchema = z.object({
  call_id: z.string(),
  /** Epoch ms. Past it the caller has had its 504 and the worker must not score the call. */
  deadline: z.number(),
  records: z.array(FraudRecordSchema).min(1),
  /** W3C trace context of the caller's enqueue span; absent when tracing is off. */
  trace: z.object({ traceparent: z.string(), tracestate: z.string().optional() }).optional(),
});
export type OnlineCall = z.infer<typeof OnlineCallSchema>;

/**
 * One online queue job carries every call that reached one api process in one event-loop
 * turn, so BullMQ's per-job bookkeeping is shared by all of them.
 */
export const PredictJobSchema = z.object({
  reply_to: z.string(),
  enqueued_at: z.number(),
  calls: z.array(OnlineCallSchema).min(1),
});
export type PredictJob = z.infer<typeof PredictJobSchema>;

export const CallTimingsSchema = z.object({
  queue_ms: z.number(),
  batch_wait_ms: z.number(),
  inference_ms: z.number(),
  batch_records: z.number().int(),
});
export type CallTimings = z.infer<typeof CallTimingsSchema>;

export const OnlineReplySchema = z.discriminatedUnion('status', [
  z.object({
    call_id: z.string(),
    status: z.literal('ok'),
    probabilities: z.array(z.number()),
    decisions: z.array(DecisionSchema),
    model_version: z.string(),
    timings: CallTimingsSchema,
  }),
  z.object({ call_id: z.string(), status: z.literal('error'), message: z.string() }),
]);
export type OnlineReply = z.infer<typeof OnlineReplySchema>;

/** What a worker publishes on an api's reply channel: the replies of one batch for that api. */
export const ReplyMessageSchema = z.object({ replies: z.array(OnlineReplySchema) });
export type ReplyMessage = z.infer<typeof ReplyMessageSchema>;

/** One chunk of a bulk job: which job, which staged chunk, and the rows it holds. */
export const BulkChunkJobSchema = z.object({
  job_id: z.string(),
  chunk: z.number().int().nonnegative(),
  /** Index of the chunk's first record in the job's input. */
  start: z.number().int().nonnegative(),
  count: z.number().int().positive(),
});
export type BulkChunkJob = z.infer<typeof BulkChunkJobSchema>;

export const QUEUES = {
  predict: {
    name: 'predict',
    jobName: 'predict',
    data: PredictJobSchema,
    // Replies travel on pub/sub, never through the job's return value, so a finished job can
    // be removed at once: no waiter races BullMQ's clean-up ("Missing key for job").
    // One attempt: a retried online job would be past its caller's deadline anyway.
    jobOptions: { attempts: 1, removeOnComplete: true, removeOnFail: true } satisfies JobsOptions,
  },
  bulk: {
    name: 'bulk-chunk',
    jobName: 'chunk',
    data: BulkChunkJobSchema,
    // A chunk's results are written idempotently (SET NX), so a retry after a crash or a
    // transient fault is safe; five attempts with backoff ride out a Redis blip of ~30 s.
    // Results live in the job's own keys, so BullMQ's copy of a chunk job is not needed.
    jobOptions: {
      attempts: 5,
      backoff: { type: 'exponential', delay: 1000 },
      removeOnComplete: true,
      removeOnFail: { count: 1000 },
    } satisfies JobsOptions,
  },
} as const;
