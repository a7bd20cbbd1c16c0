// The worker process: config → telemetry → models → Redis → consumers → ops port.
// SIGTERM: stop fetching, finish the batch in hand, close, release the model, exit.
import { randomUUID } from 'node:crypto';
import { loadConfigOrExit } from '../shared/config.ts';
import { createLogger } from '../shared/logger.ts';
import { startTelemetry } from '../shared/telemetry.ts';
import { Shutdown } from '../shared/shutdown.ts';
import { createRedis, isRedisReady, reportReachability } from '../shared/redis.ts';
import { HEARTBEAT_INTERVAL_MS, recordHeartbeat, removeWorker } from '../shared/worker-registry.ts';
import { ModelRepository } from './model-repository.ts';
import { startPredictConsumer } from './predict-consumer.ts';
import { startBulkConsumer } from './bulk-consumer.ts';
import { startOpsServer } from './ops-server.ts';
import { listenFailure } from '../shared/listen-error.ts';
import { createWorkerMetrics } from './worker-metrics.ts';
import { countJobOutcomes } from './job-outcomes.ts';
import { QUEUES } from '../shared/queues.ts';

const config = loadConfigOrExit();

const telemetry = startTelemetry({ serviceName: 'scoring-worker', ...config.telemetry });
const logger = createLogger('worker', config.logLevel);
const workerId = `${process.pid}-${randomUUID().slice(0, 8)}`;

// The repository holds every model (or those MODELS names) and reloads on its poll and SIGHUP. The
// consumers still serve fraud alone, with the version resolved here at start: a fraud model that
// is missing or does not match its manifest stops the process before it takes work.
const repository = new ModelRepository({
  root: config.worker.modelRepository,
  models: config.worker.models,
  pollSeconds: config.worker.modelPollSeconds,
  session: { intraOpNumThreads: config.worker.intraOpThreads },
  logger,
});
await repository.refresh();
const fraud = repository.acquire('fraud');
if (!('model' in fraud) || !fraud.model.scoring) {
  const reason = 'model' in fraud ? 'its manifest gives no record encoding' : fraud.message;
  logger.fatal({ model_name: 'fraud', reason }, 'model could not be loaded');
  process.exit(1);
}
const model = fraud.model.scoring;
repository.startPolling();
const thresholds = {
  approve: config.worker.approveThreshold ?? model.manifest.thresholds.approve,
  review: config.worker.reviewThreshold ?? model.manifest.thresholds.review,
};
if (thresholds.approve > thresholds.review) {
  logger.fatal({ thresholds }, 'APPROVE_THRESHOLD must not exceed REVIEW_THRESHOLD');
  process.exit(1);
}

const blocking = createRedis(config.redis, 'consumer', `worker-${workerId}`);
const plain = createRedis(config.redis, 'consumer', `worker-${workerId}-plain`);
for (const conn of [blocking, plain]) conn.on('error', (err) => logger.debug({ err }, 'redis connection error'));
// A worker started before its Redis (or with no node of its cluster answering) waits, says so, and is not ready.
reportReachability(plain, config.redis, logger, 'worker');

const metrics = createWorkerMetrics(telemetry.meter);
const predictWorkers = startPredictConsumer({
  connection: blocking,
  publisher: plain,
  prefix: config.redis.prefix,
  shards: config.queueShards.predict,
  model,
  thresholds,
  maxBatchSize: config.worker.maxBatchSize,
  maxBatchDelayMs: config.worker.maxBatchDelayMs,
  concurrency: config.worker.concurrency,
  lockDurationMs: config.bulk.lockDurationMs,
  stalledIntervalMs: config.bulk.stalledIntervalMs,
  metrics,
  logger,
  tracer: telemetry.tracer,
});
for (const worker of predictWorkers) countJobOutcomes(worker, QUEUES.predict.name, metrics);

// Bulk chunks on a connection of their own, so a chunk's Redis traffic never queues behind online replies.
const bulkConnection = createRedis(config.redis, 'consumer', `worker-${workerId}-bulk`);
bulkConnection.on('error', (err) => logger.debug({ err }, 'redis connection error'));
const bulkWorkers = startBulkConsumer({
  connection: bulkConnection,
  prefix: config.redis.prefix,
  shards: config.queueShards.bulk,
  model,
  thresholds,
  lockDurationMs: config.bulk.lockDurationMs,
  stalledIntervalMs: config.bulk.stalledIntervalMs,
  metrics,
  logger,
});
for (const worker of bulkWorkers) countJobOutcomes(worker, QUEUES.bulk.name, metrics);

let draining = false;
const ops = await startOpsServer(
  config.worker.port,
  '0.0.0.0',
  { isReady: () => !draining && isRedisReady(plain), modelVersion: model.version },
  telemetry,
).catch((err: unknown) => {
  // A chunk this worker may have taken meanwhile is handed back by the stalled check.
  console.error(listenFailure('worker', 'WORKER_PORT', '0.0.0.0', config.worker.port, err));
  process.exit(1);
});

const beat = () =>
  recordHeartbeat(plain, config.redis.prefix, workerId, model.version).catch((err: unknown) =>
    logger.debug({ err }, 'heartbeat failed'),
  );
void beat();
const heartbeat = setInterval(beat, HEARTBEAT_INTERVAL_MS);

const shutdown = new Shutdown(logger, config.worker.shutdownTimeoutMs);
shutdown.add('stop taking work', async () => {
  draining = true;
  clearInterval(heartbeat);
  await removeWorker(plain, config.redis.prefix, workerId).catch(() => undefined);
});
// close() waits for the jobs in hand (the batch in flight) to finish.
// Bulk first: it stops taking chunks and finishes (writes) the one in hand while the online
// consumer still serves. A chunk not finished by the deadline is handed back by the stalled
// check and scored once elsewhere.
shutdown.add('bulk consumer', async () => void (await Promise.all(bulkWorkers.map((w) => w.close()))));
shutdown.add('predict consumer', async () => void (await Promise.all(predictWorkers.map((w) => w.close()))));
shutdown.add('models', async () => {
  fraud.release();
  await repository.close();
});
shutdown.add('redis', async () => {
  await Promise.resolve(plain.quit()).catch(() => plain.disconnect());
  blocking.disconnect();
  bulkConnection.disconnect();
});
shutdown.add('ops server', () => new Promise<void>((resolve) => ops.close(() => resolve())));
shutdown.add('telemetry', () => telemetry.shutdown());
shutdown.listen();

logger.info({ worker_id: workerId, model_version: model.version, port: config.worker.port, thresholds }, 'worker started');
