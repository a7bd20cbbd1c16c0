// Producers and consumers made from the queue catalog (queues.ts), typed by it: a producer
// accepts only its queue's job data, a consumer's processor receives data already parsed by
// the queue's schema. Nothing else in src/ constructs a BullMQ Queue or Worker or sets job options.
import { Queue, UnrecoverableError, Worker, type Job } from 'bullmq';
import type { Redis } from 'ioredis';
import type { JobData, JobName, JobResult, QueueDefinition, QueueKey } from './queues.ts';
import { bullmqTelemetry } from './telemetry.ts';

/** A queue's producer side: its catalog entry and the BullMQ Queue (for counts, bull-board). */
export type Producer<D, R, N extends string> = {
  readonly definition: QueueDefinition<D, R, N>;
  readonly queue: TypedQueue<D, R, N>;
};

/** The producer of one queue of the catalog, by its key. */
export type QueueProducer<K extends QueueKey> = Producer<JobData<K>, JobResult<K>, JobName<K>>;

/** BullMQ's Queue with its data, result and name types given, not extracted from a Job type. */
export type TypedQueue<D, R, N extends string> = Queue<D, R, N, D, R, N>;

export function createProducer<D, R, N extends string>(
  definition: QueueDefinition<D, R, N>,
  connection: Redis,
  prefix: string,
): Producer<D, R, N> {
  const withTelemetry = definition.consumer.bullmqTelemetry ? bullmqTelemetry() : {};
  const queue: TypedQueue<D, R, N> = new Queue<D, R, N, D, R, N>(definition.name, { connection, prefix, ...withTelemetry });
  return { definition, queue };
}

/** jobId makes an enqueue idempotent: BullMQ ignores a second add with the same id. */
export type EnqueueOptions = { jobId?: string };

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
  connection: Redis;
  prefix: string;
  /** Overrides the catalog's default. */
  concurrency?: number;
  /** Used where the catalog says the lock settings come from config. */
  lockDurationMs: number;
  stalledIntervalMs: number;
};

/**
 * A BullMQ Worker for one queue of the catalog. job.data is parsed once with the queue's schema;
 * data that does not parse fails the job with UnrecoverableError, since no retry would make it
 * readable (version skew between producer and consumer).
 */
export function createConsumer<D, R, N extends string>(
  definition: QueueDefinition<D, R, N>,
  process: (data: NoInfer<D>, job: ConsumedJob<NoInfer<R>, NoInfer<N>>, token: string | undefined) => Promise<NoInfer<R>>,
  settings: ConsumerSettings,
): Consumer<R, N> {
  const { lockFromConfig, bullmqTelemetry: withTelemetry, ...workerDefaults } = definition.consumer;
  // The token is the job's lock: a processor needs it to move its job (moveToDelayed).
  const processor = async (job: ConsumedJob<R, N>, token?: string): Promise<R> => {
    const parsed = definition.data.safeParse(job.data);
    if (!parsed.success) throw new UnrecoverableError(`${definition.name} job ${job.id ?? '?'} has bad data: ${parsed.error.message}`);
    return process(parsed.data, job, token);
  };
  return new Worker<unknown, R, N>(definition.name, processor, {
    connection: settings.connection,
    prefix: settings.prefix,
    ...workerDefaults,
    ...(settings.concurrency === undefined ? {} : { concurrency: settings.concurrency }),
    ...(lockFromConfig ? { lockDuration: settings.lockDurationMs, stalledInterval: settings.stalledIntervalMs } : {}),
    ...(withTelemetry ? bullmqTelemetry() : {}),
  });
}
