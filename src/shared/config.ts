// The one place the service reads process.env. Both processes call loadConfig() once at start and
// pass the groups down; a bad variable stops the process with a message naming it. (The `scoring`
// CLI, a client, reads its own two variables in src/cli/config.ts.)
import { z } from 'zod';
import { ModelNameSchema, parseModelSelectors } from './model-selector.ts';

/**
 * The default of DEFAULT_MODEL: the model the contract's /predict describes. Also the model of a
 * bulk job recorded before jobs named their model.
 */
export const DEFAULT_MODEL_NAME = 'fraud';

const positiveInt = z.coerce.number().int().positive();
/** A comma-separated list: items trimmed, empty ones dropped; unset is []. */
const commaList = () =>
  z
    .string()
    .default('')
    .transform((s) =>
      s
        .split(',')
        .map((item) => item.trim())
        .filter(Boolean),
    );
const nonNegativeInt = z.coerce.number().int().min(0);
const probability = z.coerce.number().min(0).max(1);

const EnvSchema = z.object({
  REDIS_URL: z
    .string()
    .regex(/^rediss?:\/\//, 'must start with redis:// or rediss://')
    .default('redis://127.0.0.1:6379'),
  REDIS_CLUSTER_NODES: commaList()
    .pipe(z.array(z.string().regex(/^[^\s:]+:\d{1,5}$/, 'each node must be host:port')))
    .describe(
      'Comma-separated host:port of Redis Cluster nodes (some or all); set, every connection is in cluster mode, and of REDIS_URL only its credentials and rediss:// (TLS) are used',
    ),
  QUEUE_PREFIX: z
    .string()
    .min(1)
    .regex(/^[^{}]*$/, 'must not hold { or }: the service adds its own hash tags')
    .default('scoring')
    .describe('Prefix of every Redis key the service writes'),
  ONLINE_QUEUE_SHARDS: positiveInt
    .max(1024)
    .default(1)
    .describe('Online queues (hash-tagged, on different slots); each api sends to one, every worker drains all'),
  BULK_QUEUE_SHARDS: positiveInt.max(1024).default(1).describe('Bulk chunk queues, split like ONLINE_QUEUE_SHARDS'),

  PORT: z.coerce.number().int().min(0).max(65535).default(8080),
  HOST: z.string().default('0.0.0.0'),
  GRPC_PORT: z.coerce
    .number()
    .int()
    .min(0)
    .max(65535)
    .default(8081)
    .describe('Port of the gRPC Open Inference Protocol service (inference.GRPCInferenceService), served by the api'),
  API_KEYS: commaList().describe('Comma-separated bearer keys; empty means the API is open'),
  ADMIN_API_KEYS: commaList().describe('Comma-separated bearer keys of the admin board; with API_KEYS set and none here, the board is off'),
  ADMIN_SHOW_JOB_DATA: z.stringbool().default(false).describe('Show queue job data (record contents) on the admin board'),
  PREDICT_TIMEOUT_MS: positiveInt.max(30_000).default(2000),
  SHADOW_STREAM_LENGTH: positiveInt
    .default(10_000)
    .describe(
      "Shadow comparisons GET /models/{name}/shadow summarises (the newest); a model's Redis stream keeps at least this many records' comparisons",
    ),
  SHADOW_STREAM_RECORDS: z
    .stringbool()
    .default(false)
    .describe("Keep each compared record's contents in the shadow stream beside its id (off: ids, agreement and score difference only)"),
  MAX_BATCH_RECORDS: positiveInt.default(1000),
  MAX_JOB_RECORDS: positiveInt.default(1_000_000),
  BODY_LIMIT_BYTES: positiveInt.default(1_048_576).describe('Body limit of /predict and /predict/batch'),
  JOB_BODY_LIMIT_BYTES: positiveInt.default(256 * 1024 * 1024).describe('Body limit of POST /jobs'),
  BODY_TIMEOUT_MS: positiveInt.default(5_000).describe('Time a request body may take to arrive, but POST /jobs'),
  JOB_BODY_TIMEOUT_MS: positiveInt.default(30_000).describe('Time a POST /jobs body may take to arrive'),
  HEADERS_TIMEOUT_MS: positiveInt.default(10_000).describe("Time a request's headers may take to arrive"),
  STAGING_TTL_SECONDS: positiveInt.default(300).describe('Staged input of an upload that has not become a queued job expires after this'),
  TEST_PAUSE_BEFORE_ENQUEUE_MS: nonNegativeInt
    .default(0)
    .describe('Tests only: pause between a bulk job record and its enqueue, to make that crash window reachable'),
  TENANT_MAX_QUEUED_RECORDS: positiveInt
    .optional()
    .describe('Records one API key may have waiting in bulk jobs; past it POST /jobs answers 429 quota_exceeded. Unset: no quota'),
  LISTEN_BACKLOG: positiveInt
    .default(4096)
    .describe("Connections the kernel queues for the api before it accepts them (listen's backlog; capped by net.core.somaxconn)"),
  ONLINE_MAX_WAITING: positiveInt
    .default(2000)
    .describe('Waiting online queue jobs past which /predict answers 429 overloaded, whatever the predicted wait'),
  DOCS_PUBLIC: z.stringbool().default(true).describe('/docs and /openapi.json open without a key even when API_KEYS is set (they hold no secrets)'),
  SHUTDOWN_TIMEOUT_MS: positiveInt.default(10_000),
  LOG_LEVEL: z.enum(['fatal', 'error', 'warn', 'info', 'debug', 'trace', 'silent']).default('info'),

  WORKER_PORT: z.coerce.number().int().min(0).max(65535).default(9100),
  DEFAULT_MODEL: ModelNameSchema.default(DEFAULT_MODEL_NAME).describe('The model /predict, bulk jobs naming none, and /ready speak of'),
  MODEL_REPOSITORY: z.string().min(1).default('models').describe('Directory of <name>/<version>/model.onnx (+ manifest.json), <name>/aliases.json'),
  MODELS: z
    .string()
    .default('')
    .transform((text, ctx) => {
      try {
        return parseModelSelectors(text);
      } catch (error) {
        ctx.addIssue({ code: 'custom', message: (error as Error).message });
        return z.NEVER;
      }
    })
    .describe('name[:version|@alias],… the worker holds; empty means every model of the repository'),
  MODEL_POLL_SECONDS: nonNegativeInt.default(10).describe('How often workers look for new versions; 0 = only on SIGHUP'),
  MAX_BATCH_SIZE: positiveInt.max(65_536).default(1024).describe('Records per session.run for online work'),
  MAX_BATCH_DELAY_MS: nonNegativeInt.default(0).describe('How long a batch may wait for company; 0 takes what is there and never waits idle'),
  WORKER_CONCURRENCY: positiveInt.default(64).describe('Online queue jobs a worker holds at once'),
  WORKER_QUEUES: commaList()
    .pipe(z.array(z.enum(['online', 'bulk'])))
    .transform((roles): ('online' | 'bulk')[] => (roles.length === 0 ? ['online', 'bulk'] : [...new Set(roles)]))
    .describe('What a worker drains: online, bulk, or both (the default); separate pools scale apart'),
  BULK_SLICE_MS: z.coerce
    .number()
    .positive()
    .max(1000)
    .default(3)
    .describe('How long one bulk session.run should take; online work waits at most about this long behind bulk work'),
  BULK_THREAD_NICE: nonNegativeInt
    .max(19)
    .default(0)
    .describe(
      "The nice value of the thread bulk slices run on (0: the worker's own). Higher makes the kernel run online work first, and starves bulk behind any other busy process on the host",
    ),
  SCORE_DRIFT_WINDOW: positiveInt
    .max(10_000_000)
    .default(10_000)
    .describe("Scores a version's drift (PSI against its manifest's score_reference) is taken over"),
  APPROVE_THRESHOLD: probability.optional().describe("Defaults to the model manifest's"),
  REVIEW_THRESHOLD: probability.optional().describe("Defaults to the model manifest's"),
  INTRA_OP_THREADS: positiveInt.default(1),
  BULK_CHUNK_SIZE: positiveInt.max(100_000).default(10_000),
  RESULT_TTL_SECONDS: positiveInt.default(86_400),
  LOCK_DURATION_MS: positiveInt.default(10_000),
  STALLED_INTERVAL_MS: positiveInt.default(5_000),

  OTEL_EXPORTER_OTLP_ENDPOINT: z.string().optional(),
  OTEL_SDK_DISABLED: z.stringbool().default(false),
});

export type Env = z.infer<typeof EnvSchema>;

/** Every variable the service reads, for .env.example and the deployment files' checks. */
export const ENV_VARIABLES: readonly string[] = Object.keys(EnvSchema.shape);

export class ConfigError extends Error {
  constructor(message: string) {
    super(message);
    this.name = this.constructor.name;
  }
}

function parseNode(address: string): { host: string; port: number } {
  const at = address.lastIndexOf(':');
  return { host: address.slice(0, at), port: Number(address.slice(at + 1)) };
}

function group(env: Env) {
  return {
    redis: {
      url: env.REDIS_URL,
      clusterNodes: env.REDIS_CLUSTER_NODES.map(parseNode),
      prefix: env.QUEUE_PREFIX,
    },
    /** DEFAULT_MODEL: the model /predict scores with, a bulk job naming none is for, and /ready names the version of. */
    defaultModel: env.DEFAULT_MODEL,
    /** Shards of each queue of the catalog (queues.ts), by its key. */
    queueShards: { predict: env.ONLINE_QUEUE_SHARDS, bulk: env.BULK_QUEUE_SHARDS },
    api: {
      port: env.PORT,
      host: env.HOST,
      grpcPort: env.GRPC_PORT,
      apiKeys: env.API_KEYS,
      adminApiKeys: env.ADMIN_API_KEYS,
      adminShowJobData: env.ADMIN_SHOW_JOB_DATA,
      predictTimeoutMs: env.PREDICT_TIMEOUT_MS,
      maxBatchRecords: env.MAX_BATCH_RECORDS,
      maxJobRecords: env.MAX_JOB_RECORDS,
      bodyLimitBytes: env.BODY_LIMIT_BYTES,
      jobBodyLimitBytes: env.JOB_BODY_LIMIT_BYTES,
      bodyTimeoutMs: env.BODY_TIMEOUT_MS,
      jobBodyTimeoutMs: env.JOB_BODY_TIMEOUT_MS,
      headersTimeoutMs: env.HEADERS_TIMEOUT_MS,
      onlineMaxWaiting: env.ONLINE_MAX_WAITING,
      listenBacklog: env.LISTEN_BACKLOG,
      docsPublic: env.DOCS_PUBLIC,
      shutdownTimeoutMs: env.SHUTDOWN_TIMEOUT_MS,
    },
    worker: {
      port: env.WORKER_PORT,
      modelRepository: env.MODEL_REPOSITORY,
      models: env.MODELS,
      modelPollSeconds: env.MODEL_POLL_SECONDS,
      maxBatchSize: env.MAX_BATCH_SIZE,
      maxBatchDelayMs: env.MAX_BATCH_DELAY_MS,
      concurrency: env.WORKER_CONCURRENCY,
      queues: env.WORKER_QUEUES,
      bulkSliceMs: env.BULK_SLICE_MS,
      bulkThreadNice: env.BULK_THREAD_NICE,
      scoreDriftWindow: env.SCORE_DRIFT_WINDOW,
      approveThreshold: env.APPROVE_THRESHOLD,
      reviewThreshold: env.REVIEW_THRESHOLD,
      intraOpThreads: env.INTRA_OP_THREADS,
      shutdownTimeoutMs: env.SHUTDOWN_TIMEOUT_MS,
    },
    /** Shadow comparisons: written by the workers, summarised by the api (GET /models/{name}/shadow). */
    shadow: { streamLength: env.SHADOW_STREAM_LENGTH, keepRecords: env.SHADOW_STREAM_RECORDS },
    bulk: {
      chunkSize: env.BULK_CHUNK_SIZE,
      tenantMaxQueuedRecords: env.TENANT_MAX_QUEUED_RECORDS,
      resultTtlSeconds: env.RESULT_TTL_SECONDS,
      stagingTtlSeconds: env.STAGING_TTL_SECONDS,
      testPauseBeforeEnqueueMs: env.TEST_PAUSE_BEFORE_ENQUEUE_MS,
      lockDurationMs: env.LOCK_DURATION_MS,
      stalledIntervalMs: env.STALLED_INTERVAL_MS,
    },
    telemetry: { otlpEndpoint: env.OTEL_EXPORTER_OTLP_ENDPOINT, disabled: env.OTEL_SDK_DISABLED },
    logLevel: env.LOG_LEVEL,
  };
}

export type Config = ReturnType<typeof group>;

/**
 * Validates the environment once. Throws ConfigError listing every bad variable by name.
 */
export function loadConfig(env: NodeJS.ProcessEnv = process.env): Config {
  const parsed = EnvSchema.safeParse(env);
  if (!parsed.success) {
    const lines = parsed.error.issues.map((i) => `  ${i.path.join('.')}: ${i.message}`);
    throw new ConfigError(`Invalid environment variables:\n${lines.join('\n')}`);
  }
  const config = group(parsed.data);
  const { approveThreshold, reviewThreshold } = config.worker;
  if (approveThreshold !== undefined && reviewThreshold !== undefined && approveThreshold > reviewThreshold) {
    throw new ConfigError('Invalid environment variables:\n  APPROVE_THRESHOLD: must not exceed REVIEW_THRESHOLD');
  }
  return deepFreeze(config);
}

function deepFreeze<T extends object>(value: T): T {
  for (const v of Object.values(value)) {
    if (v && typeof v === 'object') deepFreeze(v);
  }
  return Object.freeze(value);
}

/** For a process entry point: the config, or the ConfigError's message on stderr and exit 1. */
export function loadConfigOrExit(env: NodeJS.ProcessEnv = process.env): Config {
  try {
    return loadConfig(env);
  } catch (err) {
    if (!(err instanceof ConfigError)) throw err;
    console.error(err.message);
    process.exit(1);
  }
}
