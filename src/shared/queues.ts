// The queue catalog: each queue's name, the shape of its job data and replies, and its job
// options, shared by the producer (api) and the consumer (worker) so the two cannot drift.
import { z } from 'zod';
import type { JobsOptions, WorkerOptions } from 'bullmq';
import keySlot from 'cluster-key-slot';
import { JOB_PRIORITIES } from './fair-share.ts';

/** The catalog name of one model version's online queue, before sharding (the metrics' queue label). */
function predictCatalogName(model: string, version: number): string {
  return `predict.${model}.${version}`;
}

/**
 * The BullMQ queue name of shard `shard` of `shards` of one model version's online queue. Every
 * online queue name is built here (and only here): each (model, version, shard) is a hash tag of
 * its own (shardQueueName), so a version's shards spread over the slot space like any sharded queue.
 */
export function predictQueueName(model: string, version: number, shard = 0, shards = 1): string {
  return shardQueueName(predictCatalogName(model, version), shard, shards);
}

/**
 * One caller waiting on the api: its records and the moment it stops waiting. The api validated
 * the records against the model version the queue is named for (the schema built from its
 * manifest's fields or its signature), so the worker reads them as plain objects. A protocol call
 * (REST or gRPC infer) carries its tensors as `columns` instead (tensor-columns.ts), checked
 * against the version's metadata the same way: exactly one of the two is present.
 */
export const OnlineCallSchema = z
  .object({
    call_id: z.string(),
    /** Epoch ms. Past it the caller has had its 504 and the worker must not score the call. */
    deadline: z.number(),
    records: z.array(z.record(z.string(), z.unknown())).min(1).optional(),
    /** The inputs as named typed columns: `rows` records' worth, packed by packColumns. */
    columns: z.object({ rows: z.number().int().positive(), packed: z.string() }).optional(),
    /** W3C trace context of the caller's enqueue span; absent when tracing is off. */
    trace: z.object({ traceparent: z.string(), tracestate: z.string().optional() }).optional(),
    /**
     * A version of the same model that also scores these records once the caller has its answer
     * (routing.json's shadow share): the worker compares the two (shadow-scoring.ts).
     */
    shadow: z.number().int().positive().optional(),
  })
  .refine((c) => (c.records === undefined) !== (c.columns === undefined), { message: 'a call carries records or columns' });
export type OnlineCall = z.infer<typeof OnlineCallSchema>;

/** The records a call holds, in either form. */
export function callRows(call: Pick<OnlineCall, 'records' | 'columns'>): number {
  return call.records ? call.records.length : call.columns!.rows;
}

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
  // Every model: per record, each output by name.
  z.object({
    call_id: z.string(),
    status: z.literal('outputs'),
    outputs: z.array(z.record(z.string(), z.unknown())),
    model_name: z.string(),
    model_version: z.string(),
    timings: CallTimingsSchema,
  }),
  z.object({
    call_id: z.string(),
    status: z.literal('error'),
    /**
     * model_error: the model failed on this call's records (the whole batch, or its own records).
     * model_not_found / model_unavailable: the version left this worker after the call was queued.
     */
    code: z.enum(['model_error', 'model_not_found', 'model_unavailable']),
    message: z.string(),
  }),
]);
export type OnlineReply = z.infer<typeof OnlineReplySchema>;

/**
 * How a staged chunk holds its records: `columns`, the columnar form of a record-encoded model
 * whose fields the chunk's columns hold (bulk-chunk.ts); `rows`, any model's records as msgpack (bulk-rows.ts).
 */
export const BulkChunkEncodingSchema = z.enum(['columns', 'rows']);
export type BulkChunkEncoding = z.infer<typeof BulkChunkEncodingSchema>;

/** One chunk of a bulk job: which job, which staged chunk, and the rows it holds. */
export const BulkChunkJobSchema = z.object({
  job_id: z.string(),
  chunk: z.number().int().nonnegative(),
  /** Index of the chunk's first record in the job's input. */
  start: z.number().int().nonnegative(),
  count: z.number().int().positive(),
  /** The model the job is for. */
  model: z.string(),
  /**
   * The version the job is pinned to: every chunk is scored by it and no other. Absent only when
   * no live worker could name one at submission; the first worker to take a chunk pins the job then.
   */
  version: z.number().int().positive().optional(),
  /** With no version: the alias the submission asked for (else the usual rule: champion, else latest). */
  alias: z.string().optional(),
  encoding: BulkChunkEncodingSchema,
  /** `?shadow=true`: the version (routing.json's shadow) that scores the chunk again once its results are written, to compare. */
  shadow: z.number().int().positive().optional(),
  /** The job's priority level and this chunk's fair-share tag in it (fair-share.ts); absent on chunks of an earlier release. */
  priority: z.enum(JOB_PRIORITIES).optional(),
  tag: z.number().int().nonnegative().optional(),
});
export type BulkChunkJob = z.infer<typeof BulkChunkJobSchema>;

/** What a predict job ends with: scored, or not scored because every caller had gone. */
export const PredictOutcomeSchema = z.enum(['scored', 'expired']);
export type PredictOutcome = z.infer<typeof PredictOutcomeSchema>;

/** What a chunk job ends with; the reason a chunk was not scored is a value, not an error. */
export const ChunkOutcomeSchema = z.enum(['written', 'duplicate', 'gone', 'finished', 'skipped']);
export type ChunkOutcome = z.infer<typeof ChunkOutcomeSchema>;

/**
 * What a consumer of a queue is made of, besides its processor. `lockFromConfig`: the worker's
 * lock duration and stalled-check interval come from config (LOCK_DURATION_MS,
 * STALLED_INTERVAL_MS); `bullmqTelemetry`: BullMQ's own spans carry trace context in the job.
 */
type ConsumerDefaults = Pick<WorkerOptions, 'concurrency' | 'maxStalledCount' | 'removeOnComplete' | 'removeOnFail'> & {
  lockFromConfig: boolean;
  bullmqTelemetry: boolean;
};

/** One queue of the catalog: D is its job data, R what its processor returns, N its job name. */
export type QueueDefinition<D = unknown, R = unknown, N extends string = string> = {
  name: string;
  jobName: N;
  /** The job data's schema: it types producer and consumer; a consumer parses with it unless `guard` is given. */
  data: z.ZodType<D>;
  /**
   * For data this service wrote itself and already validated where it came in: a cheaper check a
   * consumer runs instead of the full schema (why the data is not readable, or undefined).
   */
  guard?: (data: unknown) => string | undefined;
  result: z.ZodType<R>;
  jobOptions: JobsOptions;
  consumer: ConsumerDefaults;
};

/**
 * The envelope of an online job, checked where the worker takes it. Only the envelope: the api
 * wrote the job and checked each record against the version's record schema when the call came in
 * (the one check of a record); what guards here is a job of another release during a rolling deploy.
 */
function predictEnvelope(data: unknown): string | undefined {
  const job = data as Partial<PredictJob> | null;
  if (typeof job?.reply_to !== 'string' || typeof job.enqueued_at !== 'number') return 'no reply_to or enqueued_at';
  if (!Array.isArray(job.calls) || job.calls.length === 0) return 'no calls';
  for (const call of job.calls as unknown[]) {
    const c = call as Partial<OnlineCall> | null;
    if (typeof c?.call_id !== 'string' || typeof c.deadline !== 'number') return 'a call without call_id or deadline';
    const records = Array.isArray(c.records) && c.records.length > 0;
    const columns = typeof c.columns?.packed === 'string' && Number.isInteger(c.columns.rows) && c.columns.rows > 0;
    if (records === columns) return 'a call without records or columns, or with both';
  }
  return undefined;
}

export const QUEUES = {
  /** The template of every model version's online queue; predictQueue() names one. */
  predict: {
    name: 'predict',
    jobName: 'predict',
    data: PredictJobSchema,
    guard: predictEnvelope,
    result: PredictOutcomeSchema,
    // Replies travel on pub/sub, never through the job's return value, so a finished job can
    // be removed at once: no waiter races BullMQ's clean-up ("Missing key for job").
    // One attempt: a retried online job would be past its caller's deadline anyway.
    jobOptions: { attempts: 1, removeOnComplete: true, removeOnFail: true },
    consumer: {
      // A worker holds up to this many online jobs; the batcher scores them together.
      concurrency: 64,
      removeOnComplete: { count: 0 },
      removeOnFail: { count: 0 },
      lockFromConfig: true,
      // Online calls carry their trace context per call (trace-carrier.ts): BullMQ's per-job
      // spans would cost more than the call itself.
      bullmqTelemetry: false,
    },
  },
  bulk: {
    name: 'bulk-chunk',
    jobName: 'chunk',
    data: BulkChunkJobSchema,
    result: ChunkOutcomeSchema,
    // A chunk's results are written idempotently (SET NX), so a retry after a crash or a
    // transient fault is safe; five attempts with backoff ride out a Redis blip of ~30 s.
    // Results live in the job's own keys; BullMQ keeps a completed chunk for an hour only so
    // the admin board shows recent work when the system is idle.
    jobOptions: {
      attempts: 5,
      backoff: { type: 'exponential', delay: 1000 },
      removeOnComplete: { age: 3600 },
      removeOnFail: { count: 1000 },
    },
    consumer: {
      // One chunk at a time: a chunk is already a vectorized unit, and a second would only
      // compete with the online consumer for the same cores.
      concurrency: 1,
      // A chunk whose worker died twice (it may be what kills workers) fails the job rather
      // than taking a third down with it.
      maxStalledCount: 2,
      lockFromConfig: true,
      // Each chunk's process span continues the trace of the submit that made it.
      bullmqTelemetry: true,
    },
  },
} as const satisfies Record<string, QueueDefinition>;

export type QueueKey = keyof typeof QUEUES;
export type JobData<K extends QueueKey> = z.infer<(typeof QUEUES)[K]['data']>;
export type JobResult<K extends QueueKey> = z.infer<(typeof QUEUES)[K]['result']>;
export type JobName<K extends QueueKey> = (typeof QUEUES)[K]['jobName'];

/** Hash slots of a Redis Cluster. */
const CLUSTER_SLOTS = 16384;

/**
 * BullMQ queue name of shard `shard` (from 0) of a catalog queue split in `shards`. The name is a
 * hash tag, so every key of a shard shares one slot (BullMQ's scripts touch many keys of a queue
 * at once), and the tag is picked so that shard i's slot lies in the i-th of `shards` equal parts
 * of the slot space: on a cluster whose slots are split evenly over its masters in order (what
 * `redis-cli --cluster create` does, and managed services by default), N shards on N masters
 * land one on each. Api and worker compute the same names from the same settings.
 */
export function shardQueueName(name: string, shard: number, shards: number): string {
  if (!Number.isInteger(shard) || shard < 0 || shard >= shards) throw new RangeError(`shard ${shard} of ${shards}`);
  // The same rounding as redis-cli's even split: 3 masters hold 0–5460, 5461–10922, 10923–16383.
  const from = Math.round((shard * CLUSTER_SLOTS) / shards);
  const to = Math.round(((shard + 1) * CLUSTER_SLOTS) / shards);
  // CRC16 spreads tags evenly: about `shards` candidates are tried before one lands in range.
  for (let k = 0; ; k++) {
    const tag = k === 0 ? `${name}-${shard}` : `${name}-${shard}.${k}`;
    const slot = keySlot(tag);
    if (slot >= from && slot < to) return `{${tag}}`;
  }
}

/** The BullMQ queue names of every shard of a catalog queue, shard 0 first. */
export function shardQueueNames(name: string, shards: number): string[] {
  return Array.from({ length: shards }, (_, shard) => shardQueueName(name, shard, shards));
}

/**
 * The online queue of one model version: the catalog's predict entry under the version's catalog
 * name. Producers and consumers shard it (shardQueueName), giving predictQueueName()'s names.
 */
export function predictQueue(model: string, version: number): QueueDefinition<PredictJob, PredictOutcome, 'predict'> {
  return { ...QUEUES.predict, name: predictCatalogName(model, version) };
}
