// One online consumer per model version the worker holds: started when the version loads, closed
// when it is no longer held. A version that leaves keeps its consumer a short grace period, in
// which the calls still queued for it are answered with model_not_found / model_unavailable
// rather than left to their timeout while the apis learn that no worker holds it.
import type { RedisClient } from '../shared/redis.ts';
import type { Tracer } from '@opentelemetry/api';
import type { LogSink } from '../shared/logger.ts';
import { predictQueue, predictQueueName, type PredictOutcome } from '../shared/queues.ts';
import type { Consumer } from '../shared/queue-clients.ts';
import type { ModelRepository } from './model-repository.ts';
import type { ModelVersion } from './model-version.ts';
import type { WorkerMetrics } from './worker-metrics.ts';
import type { OnlineFirst } from './online-first.ts';
import { startPredictConsumer } from './predict-consumer.ts';
import type { ShadowScoring } from './shadow-scoring.ts';
import { countJobOutcomes } from './job-outcomes.ts';

/** Longer than the api's registry refresh (~1 s), so the apis stop sending before the consumer goes. */
export const RETIRE_GRACE_MS = 2_500;

export type OnlineConsumersOptions = {
  connection: RedisClient;
  publisher: RedisClient;
  prefix: string;
  /** Shards of every online queue (ONLINE_QUEUE_SHARDS): a version's consumer drains all of them. */
  shards: number;
  repository: ModelRepository;
  maxBatchSize: number;
  maxBatchDelayMs: number;
  concurrency: number;
  lockDurationMs: number;
  stalledIntervalMs: number;
  onlineFirst: OnlineFirst;
  shadows: ShadowScoring;
  metrics: WorkerMetrics;
  logger: LogSink;
  tracer: Tracer;
};

/** One version's consumer: a BullMQ Worker per shard of its queue, one batcher. */
type Running = { name: string; version: number; consumers: Consumer<PredictOutcome, 'predict'>[] };

export class OnlineConsumers {
  readonly #options: OnlineConsumersOptions;
  readonly #running = new Map<string, Running>();
  readonly #leaving = new Set<Promise<void>>();
  #closed = false;

  constructor(options: OnlineConsumersOptions) {
    this.#options = options;
  }

  /** Queue names consumed now, every shard of every version. */
  get queues(): string[] {
    const { shards } = this.#options;
    return [...this.#running.values()].flatMap((r) =>
      Array.from({ length: shards }, (_, shard) => predictQueueName(r.name, r.version, shard, shards)),
    );
  }

  /** Starts a consumer for every version in `held` without one; retires those of versions no longer there. */
  follow(held: readonly ModelVersion[]): void {
    if (this.#closed) return;
    const wanted = new Map(held.map((m) => [`${m.name}/${m.version}`, m]));
    for (const [key, m] of wanted) {
      if (!this.#running.has(key)) this.#running.set(key, this.#start(m.name, m.version));
    }
    for (const [key, running] of this.#running) {
      if (wanted.has(key)) continue;
      this.#running.delete(key);
      const leaving = new Promise<void>((resolve) => setTimeout(resolve, RETIRE_GRACE_MS).unref())
        .then(() => closeAll(running.consumers))
        .catch((err: unknown) => this.#options.logger.warn({ err }, 'closing a consumer failed'))
        .finally(() => this.#leaving.delete(leaving));
      this.#leaving.add(leaving);
      this.#options.logger.info({ model_name: running.name, model_version: running.version }, 'online consumer retiring');
    }
  }

  /** Closes every consumer after the batches in hand. */
  async close(): Promise<void> {
    this.#closed = true;
    const closing = [...this.#running.values()].map((r) => closeAll(r.consumers));
    this.#running.clear();
    await Promise.all([...closing, ...this.#leaving]);
  }

  #start(name: string, version: number): Running {
    const o = this.#options;
    const consumers = startPredictConsumer({
      connection: o.connection,
      publisher: o.publisher,
      prefix: o.prefix,
      shards: o.shards,
      modelName: name,
      version,
      acquire: () => o.repository.acquire(name, { version }),
      maxBatchSize: o.maxBatchSize,
      maxBatchDelayMs: o.maxBatchDelayMs,
      concurrency: o.concurrency,
      lockDurationMs: o.lockDurationMs,
      stalledIntervalMs: o.stalledIntervalMs,
      onlineFirst: o.onlineFirst,
      shadows: o.shadows,
      metrics: o.metrics,
      logger: o.logger,
      tracer: o.tracer,
    });
    // Outcomes are counted under the version's queue label, its shards together.
    for (const consumer of consumers) countJobOutcomes(consumer, predictQueue(name, version).name, o.metrics);
    o.logger.info({ model_name: name, model_version: version }, 'online consumer started');
    return { name, version, consumers };
  }
}

async function closeAll(consumers: readonly Consumer<PredictOutcome, 'predict'>[]): Promise<void> {
  await Promise.all(consumers.map((c) => c.close()));
}
