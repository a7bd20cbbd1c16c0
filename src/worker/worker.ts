// The worker as a function, as buildApp is the api: startWorker(config) loads the models, connects
// to Redis, starts the consumers and the ops port, and returns a handle whose close() drains it:
// stop fetching, finish the batches in hand, close, release the models. Nothing is global: the
// process (main.ts) or a test owns the telemetry it passes and the signals.
// One online consumer per loaded model version, started when the version loads and closed when it
// retires; what the worker holds is published with its heartbeat and at once on every change.
import { randomUUID } from 'node:crypto';
import type { Config } from '../shared/config.ts';
import type { Logger } from '../shared/logger.ts';
import type { Telemetry } from '../shared/telemetry.ts';
import { Shutdown } from '../shared/shutdown.ts';
import { createRedis, isRedisReady, reportReachability } from '../shared/redis.ts';
import { HEARTBEAT_INTERVAL_MS, announceChange, recordHeartbeat, removeWorker, type Heartbeat } from '../shared/worker-registry.ts';
import { QUEUES } from '../shared/queues.ts';
import { ModelRepository } from './model-repository.ts';
import type { Thresholds } from './manifest.ts';
import { startBulkConsumer } from './bulk-consumer.ts';
import { BulkRunner } from './bulk-runner.ts';
import { startOpsServer } from './ops-server.ts';
import { listenFailure } from '../shared/listen-error.ts';
import { createWorkerMetrics, observeModelLoadFailures, observeScoreDrift } from './worker-metrics.ts';
import { countJobOutcomes } from './job-outcomes.ts';
import { OnlineConsumers } from './online-consumers.ts';
import { OnlineFirst } from './online-first.ts';
import { ShadowScoring } from './shadow-scoring.ts';
import { monitorEventLoopStalls } from '../shared/event-loop-stalls.ts';
import { lowerPriorityIfBulkOnly } from './bulk-priority.ts';

/**
 * A worker could not start: `no_model` (nothing loaded; `details` has the repository's problems)
 * or `listen` (the ops port; the message is the one line an operator needs). Nothing is left running.
 */
export class WorkerStartError extends Error {
  readonly reason: 'no_model' | 'listen';
  readonly details: Record<string, unknown>;

  constructor(reason: WorkerStartError['reason'], message: string, details: Record<string, unknown> = {}, cause?: unknown) {
    super(message, cause === undefined ? undefined : { cause });
    this.name = this.constructor.name;
    this.reason = reason;
    this.details = details;
  }
}

export type WorkerDeps = { telemetry: Telemetry; logger: Logger };

export type WorkerHandle = {
  /** The worker's id in the registry. */
  id: string;
  /** Drains and stops the worker (idempotent); resolves when every step ran, within SHUTDOWN_TIMEOUT_MS. */
  close: () => Promise<void>;
};

/** Only the thresholds set in config (APPROVE_THRESHOLD, REVIEW_THRESHOLD): they override a manifest's approve / review. */
function configThresholds(config: Config): Partial<Thresholds> {
  return {
    ...(config.worker.approveThreshold === undefined ? {} : { approve: config.worker.approveThreshold }),
    ...(config.worker.reviewThreshold === undefined ? {} : { review: config.worker.reviewThreshold }),
  };
}

/**
 * Starts a worker in this process.
 * @throws WorkerStartError when no model loads or the ops port cannot be bound.
 */
export async function startWorker(config: Config, { telemetry, logger }: WorkerDeps): Promise<WorkerHandle> {
  const workerId = `${process.pid}-${randomUUID().slice(0, 8)}`;

  // Set once the consumers exist; a change before that is published by the first heartbeat.
  // eslint-disable-next-line prefer-const -- assigned below, once the consumers exist; onChange reads it before
  let onRepositoryChange: (() => void) | undefined;
  const repository = new ModelRepository({
    root: config.worker.modelRepository,
    models: config.worker.models,
    pollSeconds: config.worker.modelPollSeconds,
    // The config's thresholds meet each manifest's in the loader, once per version (manifest.ts decisionPolicy).
    session: { intraOpNumThreads: config.worker.intraOpThreads, thresholds: configThresholds(config), driftWindow: config.worker.scoreDriftWindow },
    logger,
    onChange: () => onRepositoryChange?.(),
  });
  await repository.refresh();
  // A worker that holds nothing would only take a place in the registry: stop before taking work.
  if (repository.held().length === 0) {
    const { problems, models } = repository.snapshot();
    const failures = models.flatMap((m) => m.versions.filter((v) => v.reason).map((v) => `${m.name}/${v.version}: ${v.reason}`));
    await repository.close();
    throw new WorkerStartError('no_model', 'model could not be loaded: the worker holds no model', {
      repository: config.worker.modelRepository,
      problems,
      failures,
    });
  }
  repository.startPolling();

  const blocking = createRedis(config.redis, 'consumer', `worker-${workerId}`);
  const plain = createRedis(config.redis, 'consumer', `worker-${workerId}-plain`);
  for (const conn of [blocking, plain]) conn.on('error', (err) => logger.debug({ err }, 'redis connection error'));
  // A worker started before its Redis (or with no node of its cluster answering) waits, says so, and is not ready.
  reportReachability(plain, config.redis, logger, 'worker');

  const metrics = createWorkerMetrics(telemetry.meter);
  // Bulk slices and online batches share this loop: its stalls are what an online batch waits behind.
  const stalls = monitorEventLoopStalls(telemetry.meter);
  observeModelLoadFailures(telemetry.meter, () => repository.snapshot());
  observeScoreDrift(telemetry.meter, () => repository.snapshot());
  // WORKER_QUEUES: separate pools drain one kind each; a worker that drains both puts online first.
  const drains = new Set(config.worker.queues);
  lowerPriorityIfBulkOnly(config.worker.queues, logger);
  const onlineFirst = new OnlineFirst();
  const shadows = new ShadowScoring({
    acquire: (name, version) => repository.acquire(name, { version }),
    redis: plain,
    prefix: config.redis.prefix,
    streamLength: config.shadow.streamLength,
    keepRecords: config.shadow.keepRecords,
    onlineFirst,
    metrics,
    logger,
  });
  const online = drains.has('online')
    ? new OnlineConsumers({
        connection: blocking,
        publisher: plain,
        prefix: config.redis.prefix,
        shards: config.queueShards.predict,
        repository,
        maxBatchSize: config.worker.maxBatchSize,
        maxBatchDelayMs: config.worker.maxBatchDelayMs,
        concurrency: config.worker.concurrency,
        lockDurationMs: config.bulk.lockDurationMs,
        stalledIntervalMs: config.bulk.stalledIntervalMs,
        onlineFirst,
        shadows,
        metrics,
        logger,
        tracer: telemetry.tracer,
      })
    : undefined;
  online?.follow(repository.held());

  // Bulk chunks on a connection of their own, so a chunk's Redis traffic never queues behind online replies.
  const bulkConnection = drains.has('bulk') ? createRedis(config.redis, 'consumer', `worker-${workerId}-bulk`) : undefined;
  bulkConnection?.on('error', (err) => logger.debug({ err }, 'redis connection error'));
  // Every bulk worker takes chunks from every shard; each is scored by the version its job is pinned
  // to, under a lease, and handed back when this worker does not hold that version.
  const bulkRunner = bulkConnection ? new BulkRunner({ nice: config.worker.bulkThreadNice }, logger) : undefined;
  const bulkWorkers = bulkRunner
    ? startBulkConsumer({
        connection: bulkConnection!,
        runner: bulkRunner,
        shadows,
        prefix: config.redis.prefix,
        shards: config.queueShards.bulk,
        repository,
        lockDurationMs: config.bulk.lockDurationMs,
        stalledIntervalMs: config.bulk.stalledIntervalMs,
        onlineFirst,
        sliceMs: config.worker.bulkSliceMs,
        tracing: telemetry.tracing,
        metrics,
        logger,
      })
    : [];
  for (const worker of bulkWorkers) countJobOutcomes(worker, QUEUES.bulk.name, metrics);

  /** The default model's version a /predict call would get from this worker now, for /ready. */
  function defaultModelVersion(): string {
    const r = repository.resolve(config.defaultModel);
    return r.ok ? r.model.displayVersion : 'none';
  }
  const heartbeat = (): Heartbeat => ({ modelVersion: defaultModelVersion(), snapshot: { ...repository.snapshot(), queues: config.worker.queues } });

  /** What a start that fails after this point must undo: consumers, models, connections. */
  const stopEarly = async () => {
    await Promise.all(bulkWorkers.map((w) => w.close()));
    await bulkRunner?.close();
    await online?.close();
    await shadows.close();
    await repository.close();
    plain.disconnect();
    blocking.disconnect();
    bulkConnection?.disconnect();
    stalls.stop();
  };

  let draining = false;
  // Ready once the apis can know what this worker holds: its first snapshot is in Redis.
  let announced = false;
  const ops = await startOpsServer(
    config.worker.port,
    '0.0.0.0',
    { isReady: () => announced && !draining && isRedisReady(plain), modelVersion: defaultModelVersion() },
    telemetry,
  ).catch(async (err: unknown) => {
    // A chunk this worker may have taken meanwhile is handed back by the stalled check.
    await stopEarly();
    throw new WorkerStartError('listen', listenFailure('worker', 'WORKER_PORT', '0.0.0.0', config.worker.port, err), {}, err);
  });

  const beat = () =>
    recordHeartbeat(plain, config.redis.prefix, workerId, heartbeat()).then(
      () => (announced = true),
      (err: unknown) => logger.debug({ err }, 'heartbeat failed'),
    );
  onRepositoryChange = () => {
    if (draining) return;
    online?.follow(repository.held());
    // Each version opens on the bulk thread as it loads, not under the first chunk that needs it.
    for (const model of repository.held()) bulkRunner?.prepare(model);
    announceChange(plain, config.redis.prefix, workerId, heartbeat()).then(
      () => (announced = true),
      (err: unknown) => logger.debug({ err }, 'announce failed'),
    );
  };
  // The consumers of what loaded before onRepositoryChange was set are running: tell the apis.
  onRepositoryChange();
  const heartbeatTimer = setInterval(() => void beat(), HEARTBEAT_INTERVAL_MS);

  const shutdown = new Shutdown(logger, config.worker.shutdownTimeoutMs);
  shutdown.add('stop taking work', async () => {
    draining = true;
    clearInterval(heartbeatTimer);
    await removeWorker(plain, config.redis.prefix, workerId).catch(() => undefined);
  });
  // close() waits for the jobs in hand (the batch in flight) to finish.
  // Bulk first: it stops taking chunks and finishes (writes) the one in hand while the online
  // consumers still serve. A chunk not finished by the deadline is handed back by the stalled
  // check and scored once elsewhere.
  shutdown.add('bulk consumer', async () => {
    await Promise.all(bulkWorkers.map((w) => w.close()));
    await bulkRunner?.close();
  });
  shutdown.add('predict consumers', async () => online?.close());
  shutdown.add('shadow scoring', () => shadows.close());
  shutdown.add('models', async () => {
    await repository.close();
  });
  shutdown.add('redis', async () => {
    await Promise.resolve(plain.quit()).catch(() => plain.disconnect());
    blocking.disconnect();
    bulkConnection?.disconnect();
  });
  shutdown.add('ops server', () => new Promise<void>((resolve) => ops.close(() => resolve())));
  shutdown.add('event-loop monitor', () => stalls.stop());

  logger.info(
    { worker_id: workerId, queues: config.worker.queues, models: repository.held().map((m) => `${m.name}/${m.version}`), port: config.worker.port },
    'worker started',
  );
  return { id: workerId, close: () => shutdown.run('close').then(() => undefined) };
}
