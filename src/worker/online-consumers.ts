// One online consumer per model version the worker holds: started when the version loads, closed
// when it is no longer held. A version that leaves keeps its consumer a short grace period, in
// which the calls still queued for it are answered with model_not_found / model_unavailable
// rather than left to their timeout while the apis learn that no worker holds it.
import type { Redis } from 'ioredis';
import type { Tracer } from '@opentelemetry/api';
import type { LogSink } from '../shared/logger.ts';
import type { PredictOutcome } from '../shared/queues.ts';
import type { Consumer } from '../shared/queue-clients.ts';
import { predictQueueName } from '../shared/queues.ts';
import type { Thresholds } from './decide.ts';
import type { ModelRepository } from './model-repository.ts';
import type { ModelVersion } from './model-version.ts';
import type { WorkerMetrics } from './worker-metrics.ts';
import { startPredictConsumer } from './predict-consumer.ts';
import { countJobOutcomes } from './job-outcomes.ts';

/** Longer than the api's registry refresh (~1 s), so the apis stop sending before the consumer goes. */
export const RETIRE_GRACE_MS = 2_500;

export type OnlineConsumersOptions = {
  connection: Redis;
  publisher: Redis;
  prefix: string;
  repository: ModelRepository;
  thresholds: Partial<Thresholds>;
  maxBatchSize: number;
  maxBatchDelayMs: number;
  concurrency: number;
  lockDurationMs: number;
  stalledIntervalMs: number;
  metrics: WorkerMetrics;
  logger: LogSink;
  tracer: Tracer;
};

type Running = { name: string; version: number; consumer: Consumer<PredictOutcome, 'predict'> };

export class OnlineConsumers {
  readonly #options: OnlineConsumersOptions;
  readonly #running = new Map<string, Running>();
  readonly #leaving = new Set<Promise<void>>();
  #closed = false;

  constructor(options: OnlineConsumersOptions) {
    this.#options = options;
  }

  /** Queue names consumed now. */
  get queues(): string[] {
    return [...this.#running.values()].map((r) => predictQueueName(r.name, r.version));
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
        .then(() => running.consumer.close())
        .catch((err: unknown) => this.#options.logger.warn({ err }, 'closing a consumer failed'))
        .finally(() => this.#leaving.delete(leaving));
      this.#leaving.add(leaving);
      this.#options.logger.info({ model_name: running.name, model_version: running.version }, 'online consumer retiring');
    }
  }

  /** Closes every consumer after the batches in hand. */
  async close(): Promise<void> {
    this.#closed = true;
    const closing = [...this.#running.values()].map((r) => r.consumer.close());
    this.#running.clear();
    await Promise.all([...closing, ...this.#leaving]);
  }

  #start(name: string, version: number): Running {
    const o = this.#options;
    const consumer = startPredictConsumer({
      connection: o.connection,
      publisher: o.publisher,
      prefix: o.prefix,
      modelName: name,
      version,
      acquire: () => o.repository.acquire(name, { version }),
      thresholds: o.thresholds,
      maxBatchSize: o.maxBatchSize,
      maxBatchDelayMs: o.maxBatchDelayMs,
      concurrency: o.concurrency,
      lockDurationMs: o.lockDurationMs,
      stalledIntervalMs: o.stalledIntervalMs,
      metrics: o.metrics,
      logger: o.logger,
      tracer: o.tracer,
    });
    countJobOutcomes(consumer, predictQueueName(name, version), o.metrics);
    o.logger.info({ model_name: name, model_version: version }, 'online consumer started');
    return { name, version, consumer };
  }
}
