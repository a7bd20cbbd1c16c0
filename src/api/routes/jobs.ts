// Bulk jobs: POST /jobs, GET /jobs, GET /jobs/:id, GET /jobs/:id/results, DELETE /jobs/:id.
// An encapsulated plugin: its own content-type parsers hand POST /jobs the raw body stream
// (JSON, NDJSON or CSV), which is parsed, limited and validated as it arrives, never buffered.
// Body formats, status and results rendering live in ../bulk/.
import type { Readable } from 'node:stream';
import type { FastifyInstance, FastifyReply } from 'fastify';
import type { ZodTypeProvider } from 'fastify-type-provider-zod';
import { z } from 'zod';
import type { Config } from '../../shared/config.ts';
import { createBulkStore, type BulkJobState } from '../../shared/bulk-store.ts';
import {
  AppError,
  NotFoundError,
  NotReadyError,
  PayloadTooLargeError,
  QuotaExceededError,
  UnavailableError,
  UnsupportedMediaTypeError,
} from '../../shared/errors.ts';
import { CLOCK_RESET_AFTER, openLane, resetClocks, type JobPriority, type Lane } from '../../shared/fair-share.ts';
import { isRedisReady } from '../../shared/redis.ts';
import { errorResponses } from '../../shared/schemas/error.ts';
import {
  JobAcceptedSchema,
  JobIdParamsSchema,
  JobListQuerySchema,
  JobListSchema,
  JobStatusSchema,
  encodeJobCursor,
  ModelResultsPageSchema,
  ResultsPageSchema,
  ResultsQuerySchema,
  bulkJobRequestSchema,
  type JobStatusName,
} from '../../shared/schemas/bulk-job.ts';
import { ChunkBuilder } from '../../shared/bulk-chunk.ts';
import { RowChunkBuilder } from '../../shared/bulk-rows.ts';
import { BODY_MEDIA_TYPES, bodyParserFor } from '../bulk/body-formats.ts';
import { JobModelQuerySchema, resolveJobModel, waitingFor } from '../bulk/job-model.ts';
import { modelBodyParser } from '../bulk/model-bodies.ts';
import { modelResultsPage, modelResultsStream } from '../bulk/model-results-format.ts';
import { renderAccepted, renderStatus, statusUrl } from '../bulk/job-status.ts';
import { listJobs } from '../bulk/job-list.ts';
import { limitBytes } from '../bulk/parsed-row.ts';
import { RESULT_CONTENT_TYPES, preferredResultFormat, resultsPage, resultsStream } from '../bulk/results-format.ts';
import { IntakeTurns } from '../bulk/intake-turns.ts';
import { resumeIdempotentJob, submitBulkJob, type SubmitDeps } from '../bulk/submit.ts';
import { HEADERS, componentRef } from '../openapi/operation-docs.ts';
import {
  jobAcceptedExamples,
  jobBodyExamples,
  jobCancelledExamples,
  jobListExamples,
  jobStatusExamples,
  resultsExamples,
} from '../openapi/examples.ts';

export type JobsRoutesOptions = { config: Config };

/** Retry-After of a quota refusal while no scoring rate has been measured yet. */
const QUOTA_RETRY_UNKNOWN_RATE_S = 5;

const IdempotencyHeadersSchema = z.object({
  'idempotency-key': z
    .string()
    .min(1)
    .max(255)
    .optional()
    .describe('The same key (per API key, until the job expires) returns the same job instead of making another'),
});

export async function jobsRoutes(app: FastifyInstance, { config }: JobsRoutesOptions) {
  const { prefix } = config.redis;
  const { chunkSize, resultTtlSeconds } = config.bulk;
  const { maxJobRecords, jobBodyLimitBytes, jobBodyTimeoutMs } = config.api;
  // The producer connection of the queues plugin: fail-fast, shared, closed by that plugin.
  const store = createBulkStore(app.redis, prefix);
  const submitDeps: SubmitDeps = {
    store,
    producer: app.queues.bulk,
    chunkSize,
    maxRecords: maxJobRecords,
    ttlSeconds: resultTtlSeconds,
    stagingTtlSeconds: config.bulk.stagingTtlSeconds,
    pauseBeforeEnqueueMs: config.bulk.testPauseBeforeEnqueueMs,
    openLane: (level, ownerJobs) => openJobLane(level, ownerJobs),
    turns: new IntakeTurns(),
  };
  const { tenantMaxQueuedRecords } = config.bulk;

  /** A lane for a new job; a clock far into its range starts again once nothing waits (fair-share.ts). */
  async function openJobLane(level: JobPriority, ownerJobs: number): Promise<Lane> {
    const lane = await openLane(app.redis, prefix, level, ownerJobs);
    if (lane.start <= CLOCK_RESET_AFTER) return lane;
    const counts = await Promise.all(app.queues.bulk.shards.map((q) => q.getJobCounts('prioritized', 'waiting', 'delayed')));
    if (counts.some((c) => (c.prioritized ?? 0) + (c.waiting ?? 0) + (c.delayed ?? 0) > 0)) return lane;
    await resetClocks(app.redis, prefix);
    return openLane(app.redis, prefix, level, ownerJobs);
  }

  /**
   * 429 quota_exceeded: the key has `waiting` records queued, and `over` more than its quota would
   * allow. Retry-After is when the workers, at the rate they are scoring now, get through `over`.
   */
  const quotaRefusal = (waiting: number, over: number) => {
    const rate = app.online.ratePerSecond;
    const seconds = rate && rate > 0 ? over / rate : QUOTA_RETRY_UNKNOWN_RATE_S;
    return new QuotaExceededError(
      seconds,
      `This key has ${waiting} records waiting; this job would take it past its quota of ${tenantMaxQueuedRecords} (TENANT_MAX_QUEUED_RECORDS)`,
    );
  };

  // This scope's bodies are streams: the default JSON parser (which buffers) gives way to one that
  // passes the request through. Other content types get Fastify's 415.
  app.removeContentTypeParser('application/json');
  app.addContentTypeParser([...BODY_MEDIA_TYPES], (_request, payload, done) => done(null, payload));

  /** Redis faults become 503; everything the client can act on passes through. */
  const guard = async <T>(work: () => Promise<T>): Promise<T> => {
    if (!isRedisReady(app.redis)) throw new UnavailableError();
    try {
      return await work();
    } catch (err) {
      if (err instanceof AppError || isRedisReady(app.redis)) throw err;
      // The client gets 503; the log keeps what Redis said (as the error's cause, and here).
      app.log.warn({ err }, 'redis fault during a /jobs request');
      throw new UnavailableError(undefined, { cause: err });
    }
  };

  /** The job, if it exists and belongs to the caller; a job of another key is as unknown as none. */
  const readOwnedJob = async (jobId: string, owner: string): Promise<BulkJobState> => {
    const job = await store.readJob(jobId);
    if (!job || job.staging || job.owner !== owner) throw new NotFoundError(`No job ${jobId}`);
    return job;
  };

  const accept = (reply: FastifyReply, jobId: string, status: JobStatusName) => {
    reply.code(202).header('location', statusUrl(jobId));
    return renderAccepted(jobId, status);
  };

  const routes = app.withTypeProvider<ZodTypeProvider>();

  routes.post(
    '/jobs',
    {
      bodyLimit: jobBodyLimitBytes,
      config: { bodyTimeoutMs: jobBodyTimeoutMs },
      schema: {
        operationId: 'submitJob',
        tags: ['bulk'],
        summary: `Submit 1..${maxJobRecords} records for bulk scoring`,
        description:
          'The body is `{"records": [...]}` JSON, NDJSON (one record per line) or CSV with a header row, read and ' +
          'validated as it arrives. Only a wholly valid body makes a job; a bad one is refused naming up to 100 ' +
          'problems by line (NDJSON, CSV) or index (JSON) and field. Records may carry an `id`, echoed with their result. ' +
          '`?model=` (default fraud) with `version=` or `alias=` picks the model; the job is pinned to the version resolved ' +
          'now (champion, else latest, when neither is given), and every record is scored by it. A model other than fraud takes ' +
          'records whose fields are its inputs (as `POST /models/{name}/predict`), and its results carry each output by name.',
        headers: IdempotencyHeadersSchema,
        querystring: JobModelQuerySchema,
        response: {
          202: JobAcceptedSchema,
          ...errorResponses(
            'validation_error',
            'unauthorized',
            'model_not_found',
            'request_timeout',
            'quota_exceeded',
            'payload_too_large',
            'unsupported_media_type',
            'unavailable',
            'model_unavailable',
            'insufficient_storage',
          ),
        },
        docs: {
          requestBody: {
            description: `1..${maxJobRecords} records (MAX_JOB_RECORDS), at most ${jobBodyLimitBytes} bytes (JOB_BODY_LIMIT_BYTES)`,
            content: {
              'application/json': { schema: componentRef(bulkJobRequestSchema(maxJobRecords)), examples: jobBodyExamples['application/json'] },
              'application/x-ndjson': {
                schema: { type: 'string', description: 'One BulkRecord JSON object per line (application/ndjson is taken too)' },
                examples: jobBodyExamples['application/x-ndjson'],
              },
              'text/csv': {
                schema: {
                  type: 'string',
                  description: `A header row naming BulkRecord's fields (any order; id optional), then one record per line`,
                },
                examples: jobBodyExamples['text/csv'],
              },
            },
          },
          responses: {
            202: {
              description: 'The job exists and is queued; follow status_url',
              headers: { Location: HEADERS.location, 'Idempotent-Replayed': HEADERS.idempotentReplayed },
              examples: jobAcceptedExamples,
            },
          },
        },
      },
    },
    async (request, reply) => {
      const parse = bodyParserFor(request.headers['content-type']);
      const body = request.body as Readable | undefined;
      if (!parse || !body || typeof body[Symbol.asyncIterator] !== 'function') {
        throw new UnsupportedMediaTypeError(`POST /jobs takes ${BODY_MEDIA_TYPES.join(', ')}`);
      }
      const declared = Number(request.headers['content-length']);
      if (declared > jobBodyLimitBytes) throw new PayloadTooLargeError(`The body is larger than ${jobBodyLimitBytes} bytes`);
      const idempotencyKey = request.headers['idempotency-key'];

      return guard(async () => {
        const known = await resumeIdempotentJob(submitDeps, request.owner, idempotencyKey);
        const knownJob = known.job;
        if (knownJob) {
          // The body is not needed; it is left unread and the connection closed after the answer.
          if (!body.readableEnded) reply.header('connection', 'close');
          reply.header('idempotent-replayed', 'true');
          return accept(reply, knownJob.jobId, knownJob.status);
        }
        // Refused early (bad rows, too large), the rest of the body is never read: the socket is
        // not reusable, so the answer closes it rather than leave the client's upload hanging.
        const source = body.iterator({ destroyOnReturn: false });
        let outcome;
        let target;
        try {
          target = await resolveJobModel(app.models, request.query, config.defaultModel);
          // The quota is checked before a byte is staged, and again as records arrive.
          const backlog = await store.ownerBacklog(request.owner);
          if (tenantMaxQueuedRecords !== undefined && backlog.records >= tenantMaxQueuedRecords) {
            throw quotaRefusal(backlog.records, backlog.records - tenantMaxQueuedRecords + 1);
          }
          const quota =
            tenantMaxQueuedRecords === undefined
              ? undefined
              : {
                  allowance: tenantMaxQueuedRecords - backlog.records,
                  // The job's size is not known (reading stopped): it fits for sure once the key's backlog is done.
                  refuse: () => quotaRefusal(backlog.records, backlog.records),
                };
          const lane = await openJobLane(request.query.priority, backlog.jobs);
          const mediaType = (request.headers['content-type'] ?? '').split(';')[0]!.trim().toLowerCase();
          const common = {
            owner: request.owner,
            idempotencyKey,
            replaces: known.stale,
            model: target.pinned,
            lane,
            ...(quota ? { quota } : {}),
          };
          const rows = limitBytes(source, jobBodyLimitBytes);
          outcome =
            target.encoding === 'columns'
              ? await submitBulkJob(submitDeps, {
                  ...common,
                  rows: parse(rows),
                  chunks: { encoding: 'columns', builder: new ChunkBuilder(chunkSize) },
                })
              : await submitBulkJob(submitDeps, {
                  ...common,
                  rows: modelBodyParser(mediaType, target.records!)(rows),
                  chunks: { encoding: 'rows', builder: new RowChunkBuilder(chunkSize) },
                });
        } catch (err) {
          if (!body.readableEnded) reply.header('connection', 'close');
          throw err;
        }
        if (!outcome.created) {
          reply.header('idempotent-replayed', 'true');
          const job = await store.readJob(outcome.jobId);
          return accept(reply, outcome.jobId, job?.status ?? 'queued');
        }
        request.log.info(
          { job_id: outcome.jobId, model_name: target.pinned.name, model_version: target.pinned.version, priority: request.query.priority },
          'bulk job accepted',
        );
        return accept(reply, outcome.jobId, 'queued');
      });
    },
  );

  routes.get(
    '/jobs',
    {
      schema: {
        operationId: 'listJobs',
        tags: ['bulk'],
        summary: "The caller's jobs, newest first, a page at a time",
        description: 'With API_KEYS set, the jobs made with the same key; expired jobs are gone from the list.',
        querystring: JobListQuerySchema,
        response: { 200: JobListSchema, ...errorResponses('validation_error', 'unauthorized', 'unavailable') },
        docs: { responses: { 200: { description: 'A page of jobs', examples: jobListExamples } } },
      },
    },
    async (request) =>
      guard(async () => {
        const { status, limit, cursor } = request.query;
        const [page, backlog] = await Promise.all([
          listJobs(store, { owner: request.owner, status, limit, after: cursor ?? null }),
          store.ownerBacklog(request.owner),
        ]);
        return {
          queued_records: backlog.records,
          jobs: page.jobs.map((job) => renderStatus(job, waitingFor(app.models, job.modelName, job.modelVersionNumber))),
          next_cursor: page.next ? encodeJobCursor(page.next) : null,
        };
      }),
  );

  routes.get(
    '/jobs/:id',
    {
      schema: {
        operationId: 'getJob',
        tags: ['bulk'],
        summary: 'Status and progress of a bulk job',
        params: JobIdParamsSchema,
        response: { 200: JobStatusSchema, ...errorResponses('validation_error', 'unauthorized', 'not_found', 'unavailable') },
        docs: { responses: { 200: { description: 'The job', examples: jobStatusExamples } } },
      },
    },
    async (request) =>
      guard(async () => {
        const job = await readOwnedJob(request.params.id, request.owner);
        return renderStatus(job, waitingFor(app.models, job.modelName, job.modelVersionNumber));
      }),
  );

  routes.get(
    '/jobs/:id/results',
    {
      schema: {
        operationId: 'getJobResults',
        tags: ['bulk'],
        summary: 'Results of a completed job, in input order',
        description:
          'A JSON page (`offset`, `limit`) by default; with `Accept: application/x-ndjson` or `Accept: text/csv`, ' +
          'every result, streamed (offset and limit do not apply). Each result has its `index` in the input and ' +
          "the record's `id` when it had one.",
        params: JobIdParamsSchema,
        querystring: ResultsQuerySchema,
        response: {
          200: ResultsPageSchema.or(ModelResultsPageSchema),
          ...errorResponses('validation_error', 'unauthorized', 'not_found', 'not_ready', 'unavailable'),
        },
        docs: {
          responses: {
            200: {
              description: 'Results, in the format the Accept header prefers',
              examples: resultsExamples['application/json'],
              content: {
                'application/x-ndjson': {
                  schema: {
                    type: 'string',
                    description: 'One JobResult (ModelJobResult for a model other than fraud) JSON object per line, every result',
                  },
                  examples: resultsExamples['application/x-ndjson'],
                },
                'text/csv': {
                  schema: {
                    type: 'string',
                    description:
                      "Header `index,id,fraud_probability,decision` (another model's job: `index,id` and a column per output), then every result",
                  },
                  examples: resultsExamples['text/csv'],
                },
              },
            },
          },
        },
      },
    },
    async (request, reply) =>
      guard(async () => {
        const job = await readOwnedJob(request.params.id, request.owner);
        if (job.status !== 'completed') {
          const why = job.status === 'failed' && job.error ? `: ${job.error}` : '';
          throw new NotReadyError(`Job ${job.jobId} is ${job.status}${why}; results exist once it has completed`);
        }
        const format = preferredResultFormat(request.headers.accept);
        // Text in the chosen format, sent as it is, past the page schema's serializer (the
        // schema documents the JSON page; the row formatter writes exactly its fields).
        const raw = (reply as FastifyReply).type(RESULT_CONTENT_TYPES[format]);
        if (job.encoding === 'rows') {
          if (format !== 'application/json') return raw.send(modelResultsStream(store, job, format));
          return raw.send(await modelResultsPage(store, job, request.query.offset, request.query.limit));
        }
        if (format !== 'application/json') return raw.send(resultsStream(store, job, format));
        return raw.send(await resultsPage(store, job, request.query.offset, request.query.limit));
      }),
  );

  routes.delete(
    '/jobs/:id',
    {
      schema: {
        operationId: 'cancelJob',
        tags: ['bulk'],
        summary: 'Cancel a queued or running job: chunks not yet scored are not scored',
        description: 'A job that is already over is left as it is and returned.',
        params: JobIdParamsSchema,
        response: { 202: JobStatusSchema, ...errorResponses('validation_error', 'unauthorized', 'not_found', 'unavailable') },
        docs: { responses: { 202: { description: 'The job after the cancel', examples: jobCancelledExamples } } },
      },
    },
    async (request, reply) =>
      guard(async () => {
        const job = await readOwnedJob(request.params.id, request.owner);
        const status = await store.cancelJob(job.jobId, Date.now());
        if (status === null) throw new NotFoundError(`No job ${job.jobId}`);
        // Unscored input is dead weight now; workers skip the chunk jobs of a cancelled job.
        if (status === 'cancelled') await store.dropStagedChunks(job.jobId, job.chunks);
        const after = await store.readJob(job.jobId);
        reply.code(202);
        return renderStatus(after ?? job);
      }),
  );
}
