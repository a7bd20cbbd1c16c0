// Bulk jobs: POST /jobs, GET /jobs/:id, GET /jobs/:id/results, DELETE /jobs/:id.
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
  UnavailableError,
  UnsupportedMediaTypeError,
} from '../../shared/errors.ts';
import { isRedisReady } from '../../shared/redis.ts';
import { ErrorBodySchema } from '../../shared/schemas/error.ts';
import {
  JobAcceptedSchema,
  JobIdParamsSchema,
  JobStatusSchema,
  ModelResultsPageSchema,
  ResultsPageSchema,
  ResultsQuerySchema,
  type JobStatusName,
} from '../../shared/schemas/bulk-job.ts';
import { ChunkBuilder } from '../../shared/bulk-chunk.ts';
import { RowChunkBuilder } from '../../shared/bulk-rows.ts';
import { BODY_MEDIA_TYPES, bodyParserFor } from '../bulk/body-formats.ts';
import { JobModelQuerySchema, resolveJobModel, waitingFor } from '../bulk/job-model.ts';
import { modelBodyParser } from '../bulk/model-bodies.ts';
import { modelResultsPage, modelResultsStream } from '../bulk/model-results-format.ts';
import { renderAccepted, renderStatus, statusUrl } from '../bulk/job-status.ts';
import { limitBytes } from '../bulk/parsed-row.ts';
import { RESULT_CONTENT_TYPES, preferredResultFormat, resultsPage, resultsStream } from '../bulk/results-format.ts';
import { findIdempotentJob, submitBulkJob } from '../bulk/submit.ts';

export type JobsRoutesOptions = { config: Config };

const IdempotencyHeadersSchema = z.object({ 'idempotency-key': z.string().min(1).max(255).optional() });

const errors = (...codes: number[]) => Object.fromEntries(codes.map((c) => [c, ErrorBodySchema]));

export async function jobsRoutes(app: FastifyInstance, { config }: JobsRoutesOptions) {
  const { prefix } = config.redis;
  const { chunkSize, resultTtlSeconds } = config.bulk;
  const { maxJobRecords, jobBodyLimitBytes } = config.api;
  // The producer connection of the queues plugin: fail-fast, shared, closed by that plugin.
  const store = createBulkStore(app.redis, prefix);

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
      throw new UnavailableError();
    }
  };

  /** The job, if it exists and belongs to the caller; a job of another key is as unknown as none. */
  const readOwnedJob = async (jobId: string, owner: string): Promise<BulkJobState> => {
    const job = await store.readJob(jobId);
    if (!job || job.owner !== owner) throw new NotFoundError(`No job ${jobId}`);
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
      schema: {
        summary: `Submit 1..${maxJobRecords} records for bulk scoring: {records: [...]} JSON, NDJSON, or CSV with a header row. ?model=&version= (or &alias=) picks the model (default fraud); the job is pinned to the version resolved now`,
        headers: IdempotencyHeadersSchema,
        querystring: JobModelQuerySchema,
        response: { 202: JobAcceptedSchema, ...errors(400, 401, 404, 413, 415, 503) },
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
        const known = await findIdempotentJob(store, request.owner, idempotencyKey);
        const knownJob = known ? await store.readJob(known) : null;
        if (knownJob) {
          // The body is not needed; it is left unread and the connection closed after the answer.
          if (!body.readableEnded) reply.header('connection', 'close');
          reply.header('idempotent-replayed', 'true');
          return accept(reply, knownJob.jobId, knownJob.status);
        }
        // Refused early (bad rows, too large), the rest of the body is never read: the socket is
        // not reusable, so the answer closes it rather than leave the client's upload hanging.
        const source = body.iterator({ destroyOnReturn: false });
        const deps = { store, producer: app.queues.bulk, chunkSize, maxRecords: maxJobRecords, ttlSeconds: resultTtlSeconds };
        const common = { owner: request.owner, idempotencyKey };
        let outcome;
        try {
          const target = await resolveJobModel(app.models, request.query);
          if (target.encoding === 'columns') {
            outcome = await submitBulkJob(deps, {
              ...common,
              rows: parse(limitBytes(source, jobBodyLimitBytes)),
              model: target.pinned,
              chunks: { encoding: 'columns', builder: new ChunkBuilder(chunkSize) },
            });
          } else {
            const mediaType = (request.headers['content-type'] ?? '').split(';')[0]!.trim().toLowerCase();
            const parseModel = modelBodyParser(mediaType, target.signature!);
            outcome = await submitBulkJob(deps, {
              ...common,
              rows: parseModel(limitBytes(source, jobBodyLimitBytes)),
              model: target.pinned,
              chunks: { encoding: 'rows', builder: new RowChunkBuilder(chunkSize) },
            });
          }
        } catch (err) {
          if (!body.readableEnded) reply.header('connection', 'close');
          throw err;
        }
        if (!outcome.created) {
          reply.header('idempotent-replayed', 'true');
          const job = await store.readJob(outcome.jobId);
          return accept(reply, outcome.jobId, job?.status ?? 'queued');
        }
        request.log.info({ job_id: outcome.jobId, model_name: request.query.model, model_version: request.query.version }, 'bulk job accepted');
        return accept(reply, outcome.jobId, 'queued');
      });
    },
  );

  routes.get(
    '/jobs/:id',
    {
      schema: {
        summary: 'Status and progress of a bulk job',
        params: JobIdParamsSchema,
        response: { 200: JobStatusSchema, ...errors(401, 404, 503) },
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
        summary:
          'Results in input order: a JSON page (offset, limit), or with Accept: application/x-ndjson or text/csv every result, streamed',
        params: JobIdParamsSchema,
        querystring: ResultsQuerySchema,
        response: { 200: ResultsPageSchema.or(ModelResultsPageSchema), ...errors(401, 404, 409, 503) },
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
        summary: 'Cancel a queued or running job: chunks not yet scored are not scored',
        params: JobIdParamsSchema,
        response: { 202: JobStatusSchema, ...errors(401, 404, 503) },
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
