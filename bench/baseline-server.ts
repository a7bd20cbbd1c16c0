// The benchmark's baseline: the same validation (FraudRecordSchema through
// fastify-type-provider-zod, the api's error handler), the same model and the same decision (the
// worker's one loader, loadModelVersion, and its policy), served in-process by a plain Fastify route with no queue. Each request is
// scored on its own, the way an in-process service without a batcher would. It runs as its
// own process so it does not share the load generator's event loop; the queue's cost is the
// ratio of the api's figures to these. Configured by the same environment as the api and
// worker (PORT, MODEL_REPOSITORY, INTRA_OP_THREADS, LOG_LEVEL, BODY_LIMIT_BYTES, MAX_BATCH_RECORDS).
import Fastify from 'fastify';
import { randomUUID } from 'node:crypto';
import { serializerCompiler, validatorCompiler, type ZodTypeProvider } from 'fastify-type-provider-zod';
import { z } from 'zod';
import { loadConfig } from '../src/shared/config.ts';
import { loggerOptions } from '../src/shared/logger.ts';
import { FraudRecordSchema } from '../src/shared/schemas/record.ts';
import { BatchResponseSchema, PredictionSchema, batchRequestSchema } from '../src/shared/schemas/prediction.ts';
import errorsPlugin from '../src/api/plugins/errors.ts';
import { basename } from 'node:path';
import { loadModelVersion } from '../src/worker/model-version.ts';
import { defaultVersionDir } from '../src/worker/repository-scan.ts';
import type { Decision } from '../src/shared/schemas/prediction.ts';

const config = loadConfig();
const dir = await defaultVersionDir(config.worker.modelRepository, config.defaultModel);
const model = await loadModelVersion(dir, config.defaultModel, Number(basename(dir)), {
  intraOpNumThreads: config.worker.intraOpThreads,
  thresholds: {
    ...(config.worker.approveThreshold === undefined ? {} : { approve: config.worker.approveThreshold }),
    ...(config.worker.reviewThreshold === undefined ? {} : { review: config.worker.reviewThreshold }),
  },
});
const decide = (p: number) => model.decide(p) as Decision;

// The same Fastify options as the api's buildApp, so the HTTP layer costs the same.
const app = Fastify({
  logger: loggerOptions('baseline', config.logLevel),
  genReqId: () => randomUUID(),
  requestIdHeader: 'x-request-id',
  bodyLimit: config.api.bodyLimitBytes,
  forceCloseConnections: 'idle',
  return503OnClosing: true,
}).withTypeProvider<ZodTypeProvider>();
app.setValidatorCompiler(validatorCompiler);
app.setSerializerCompiler(serializerCompiler);
app.removeContentTypeParser('text/plain');
await app.register(errorsPlugin);

/** session.run calls and records scored, for the bench's avg_batch column. */
const stats = { runs: 0, records: 0 };

app.post('/predict', { schema: { body: FraudRecordSchema, response: { 200: PredictionSchema } } }, async (request) => {
  const [p] = await model.probabilities([request.body]);
  stats.runs++;
  stats.records++;
  return { fraud_probability: p!, decision: decide(p!), model_version: model.displayVersion };
});

app.post(
  '/predict/batch',
  { schema: { body: batchRequestSchema(config.api.maxBatchRecords), response: { 200: BatchResponseSchema } } },
  async (request) => {
    const started = performance.now();
    const { records } = request.body;
    const probabilities = await model.probabilities(records);
    stats.runs++;
    stats.records += records.length;
    return {
      results: Array.from(probabilities, (p) => ({ fraud_probability: p, decision: decide(p) })),
      model_version: model.displayVersion,
      latency_ms: Number((performance.now() - started).toFixed(3)),
    };
  },
);

app.get('/health', async () => ({ status: 'ok' }));
app.get('/stats', { schema: { response: { 200: z.object({ runs: z.number(), records: z.number() }) } } }, async () => stats);

const close = async () => {
  await app.close();
  await model.retire();
  process.exit(0);
};
process.once('SIGTERM', () => void close());
process.once('SIGINT', () => void close());

await app.listen({ port: config.api.port, host: '127.0.0.1' });
