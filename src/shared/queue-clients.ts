// Producers and consumers made from the queue catalog (queues.ts), typed by it: a producer
// accepts only its queue's job data, a consumer's processor receives data already parsed by
// the queue's schema. Nothing else in src/ constructs a BullMQ Queue or Worker or sets job options.
import { Queue, UnrecoverableError, Worker, type Job } from 'bullmq';
import type { RedisClient } from './redis.ts';
import { shardQueueName, type JobData, type JobName, type JobResult, type QueueDefinition, type QueueKey } from './queues.ts';
import { bullmqTelemetry } from './telemetry.ts';

/** Whether spans are exported (Telemetry.tracing of the caller's process): BullMQ's own spans only then. */
export type QueueTracing = { tracing?: boolean };

/**
 * A queue's producer side: its catalog entry, the shard this process sends to, and every shard
 * (for counts and bull-board). A queue split in shards (ONLINE_QUEUE_SHARDS, BULK_QUEUE_SHARDS)
 * is one BullMQ queue per shard, each under a hash tag of its own (queues.ts, shardQueueName).
 */
export type Producer<D, R, N extends string> = {
  readonly definition: QueueDefinition<D, R, N>;
  /** The shard this process sends to. */
  readonly queue: TypedQueue<D, R, N>;
  /** Every shard, shard 0 first; `queue` is one of them. */
  readonly shards: readonly TypedQueue<D, R, N>[];
};

/** The producer of one queue of the catalog, by its key. */
export type QueueProducer<K extends QueueKey> = Producer<JobData<K>, JobResult<K>, JobName<K>>;

/** BullMQ's Queue with its data, result and name types given, not extracted from a Job type. */
export type TypedQueue<D, R, N extends string> = Queue<D, R, N, D, R, N>;

/** How a queue is split, and which shard this process sends to. One shard unless said. */
export type Sharding = { shards: number; shard: number };

export function createProducer<D, R, N extends string>(
  definition: QueueDefinition<D, R, N>,
  connection: RedisClient,
  prefix: string,
  { shards, shard }: Sharding = { shards: 1, shard: 0 },
  { tracing = false }: QueueTracing = {},
): Producer<D, R, N> {
  const withTelemetry = definition.consumer.bullmqTelemetry ? bullmqTelemetry(tracing) : {};
  const queues = Array.from(
    { length: shards },
    (_, i): TypedQueue<D, R, N> => new Queue<D, R, N, D, R, N>(shardQueueName(definition.name, i, shards), { connection, prefix, ...withTelemetry }),
  );
  const queue = queues[shard];
  if (!queue) throw new RangeError(`${definition.name}: shard ${shard} of ${shards}`);
  return { definition, queue, shards: queues };
}

/**
 * jobId makes an enqueue idempotent: BullMQ ignores a second add with the same id. priority:
 * BullMQ's, lowest first (the bulk queue's fair share, fair-share.ts).
 */
export type EnqueueOptions = { jobId?: string; priority?: number };

export async function enqueue<D, R, N extends string>(producer: Producer<D, R, N>, data: D, options: EnqueueOptions = {}): Promise<void> {
  const { jobName, jobOptions } = producer.definition;
  await producer.queue.add(jobName, data, { ...jobOptions, ...options });
}

/** Adds every job in one round trip (one MULTI): all of them or, on a Redis error, none. */
export async function enqueueBulk<D, R, N extends string>(
  producer: Producer<D, R, N>,
  jobs: readonly ({ data: D } & EnqueueOptions)[],
): Promise<void> {
  if (jobs.length === 0) return;
  const { jobName, jobOptions } = producer.definition;
  await producer.queue.addBulk(jobs.map(({ data, ...options }) => ({ name: jobName, data, opts: { ...jobOptions, ...options } })));
}

/** A job as a consumer sees it before parsing: its data is whatever Redis holds. */
export type ConsumedJob<R, N extends string> = Job<unknown, R, N>;
export type Consumer<R, N extends string> = Worker<unknown, R, N>;
/** The consumer of one queue of the catalog, by its key. */
export type QueueConsumer<K extends QueueKey> = Consumer<JobResult<K>, JobName<K>>;

export type ConsumerSettings = {
  /** Must have maxRetriesPerRequest null (BullMQ blocks on it). */
  connection: RedisClient;
  prefix: string;
  /** Overrides the catalog's default. */
  concurrency?: number;
  /** Used where the catalog says the lock settings come from config. */
  lockDurationMs: number;
  stalledIntervalMs: number;
  /** Shards of the queue; a consumer drains every one of them. 1 unless said. */
  shards?: number;
} & QueueTracing;

/**
 * BullMQ Workers for one queue of the catalog, one per shard, so a process drains every shard.
 * job.data is checked once, by the catalog's guard when it has one (data the service wrote and
 * validated where it came in) else by the queue's schema; data that fails fails the job with
 * UnrecoverableError, since no retry would make it readable (version skew between producer and
 * consumer). Concurrency holds per shard.
 */
export function createConsumers<D, R, N extends string>(
  definition: QueueDefinition<D, R, N>,
  process: (data: NoInfer<D>, job: ConsumedJob<NoInfer<R>, NoInfer<N>>, token: string | undefined) => Promise<NoInfer<R>>,
  settings: ConsumerSettings,
): Consumer<R, N>[] {
  const { lockFromConfig, bullmqTelemetry: withTelemetry, ...workerDefaults } = definition.consumer;
  // The token is the job's lock: a processor needs it to move its job (moveToDelayed).
  const processor = async (job: ConsumedJob<R, N>, token?: string): Promise<R> => {
    if (definition.guard) {
      const problem = definition.guard(job.data);
      if (problem !== undefined) throw new UnrecoverableError(`${definition.name} job ${job.id ?? '?'} has bad data: ${problem}`);
      // The catalog's guard passed: the data is the service's own, typed by the catalog.
      return process(job.data as D, job, token);
    }
    const parsed = definition.data.safeParse(job.data);
    if (!parsed.success) throw new UnrecoverableError(`${definition.name} job ${job.id ?? '?'} has bad data: ${parsed.error.message}`);
    return process(parsed.data, job, token);
  };
  const shards = settings.shards ?? 1;
  return Array.from(
    { length: shards },
    (_, shard) =>
      new Worker<unknown, R, N>(shardQueueName(definition.name, shard, shards), processor, {
        connection: settings.connection,
        prefix: settings.prefix,
        ...workerDefaults,
        ...(settings.concurrency === undefined ? {} : { concurrency: settings.concurrency }),
        ...(lockFromConfig ? { lockDuration: settings.lockDurationMs, stalledInterval: settings.stalledIntervalMs } : {}),
        ...(withTelemetry ? bullmqTelemetry(settings.tracing ?? false) : {}),
      }),
  );
}

/** The consumer of a queue that is not split: createConsumers' one Worker. */
export function createConsumer<D, R, N extends string>(
  definition: QueueDefinition<D, R, N>,
  process: (data: NoInfer<D>, job: ConsumedJob<NoInfer<R>, NoInfer<N>>) => Promise<NoInfer<R>>,
  settings: Omit<ConsumerSettings, 'shards'>,
): Consumer<R, N> {
  return createConsumers(definition, process, { ...settings, shards: 1 })[0]!;
}
