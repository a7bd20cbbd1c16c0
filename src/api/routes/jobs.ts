// Bulk jobs: POST /jobs, GET /jobs/:id, GET /jobs/:id/results, DELETE /jobs/:id.
// An encapsulated plugin: its own content-type parsers hand POST /jobs the raw body stream
// (JSON, NDJSON or CSV), which is parsed, limited and validated as it arrives, never buffered.
import { Readable } from 'node:stream';
import type { FastifyInstance, FastifyReply } from 'fastify';
import type { ZodTypeProvider } from 'fastify-type-provider-zod';
import { z } from 'zod';
import type { Config } from '../../shared/config.ts';
import { createBulkStore, type BulkJobState, type BulkStore } from '../../shared/bulk-store.ts';
import { decisionOf, decodeResults, type ChunkResults } from '../../shared/bulk-chunk.ts';
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
  ResultsPageSchema,
  ResultsQuerySchema,
  type JobResult,
  type JobStatus,
  type JobStatusName,
} from '../../shared/schemas/bulk-job.ts';
import { parseCsv } from '../bulk/parse-csv.ts';
import { parseJson } from '../bulk/parse-json.ts';
import { parseNdjson } from '../bulk/parse-ndjson.ts';
import { limitBytes, type ParsedRow } from '../bulk/parsed-row.ts';
import { resumeIdempotentJob, submitBulkJob, type SubmitDeps } from '../bulk/submit.ts';

export type JobsRoutesOptions = { config: Config };

const BODY_FORMATS = {
  'application/json': parseJson,
  'application/x-ndjson': parseNdjson,
  'application/ndjson': parseNdjson,
  'text/csv': parseCsv,
} as const satisfies Record<string, (body: AsyncIterable<Buffer>) => AsyncGenerator<ParsedRow>>;
type BodyFormat = keyof typeof BODY_FORMATS;

const RESULT_FORMATS = ['application/json', 'application/x-ndjson', 'text/csv'] as const;
type ResultFormat = (typeof RESULT_FORMATS)[number];

const IdempotencyHeadersSchema = z.object({ 'idempotency-key': z.string().min(1).max(255).optional() });

const errors = (...codes: number[]) => Object.fromEntries(codes.map((c) => [c, ErrorBodySchema]));

function mediaType(header: string | undefined): string {
  return (header ?? '').split(';')[0]!.trim().toLowerCase();
}

/** The first supported type in the client's Accept preference (q-values honoured); JSON by default. */
export function preferredResultFormat(accept: string | undefined): ResultFormat {
  let best: { format: ResultFormat; q: number } = { format: 'application/json', q: -1 };
  for (const part of (accept ?? '').split(',')) {
    const [type, ...params] = part.split(';').map((s) => s.trim().toLowerCase());
    const qParam = params.find((p) => p.startsWith('q='));
    const q = qParam ? Number(qParam.slice(2)) : 1;
    const format = type === '*/*' || type === 'application/*' ? 'application/json' : RESULT_FORMATS.find((f) => f === type);
    if (format && q > best.q) best = { format, q };
  }
  return best.format;
}

function iso(ms: number | null): string | null {
  return ms === null ? null : new Date(ms).toISOString();
}

function renderStatus(job: BulkJobState): JobStatus {
  return {
    job_id: job.jobId,
    status: job.status,
    progress: { total: job.total, done: job.done },
    model_version: job.modelVersion,
    created_at: iso(job.createdAt)!,
    started_at: iso(job.startedAt),
    finished_at: iso(job.finishedAt),
    expires_at: iso(job.expiresAt)!,
    error: job.error,
  };
}

function csvCell(text: string): string {
  return /[",\r\n]/.test(text) ? `"${text.replaceAll('"', '""')}"` : text;
}

function resultAt(results: ChunkResults, row: number, index: number): JobResult {
  const result: JobResult = {
    index,
    fraud_probability: results.probabilities[row]!,
    decision: decisionOf(results.decisions[row]!),
  };
  const id = results.ids?.[row];
  if (id) result.id = id;
  return result;
}

/** Rows per piece of a streamed download (~80 kB). */
const STREAM_PIECE_ROWS = 1000;

/** Every result of a job in order, one result chunk in memory at a time, as NDJSON or CSV text. */
async function* streamResults(store: BulkStore, job: BulkJobState, format: 'application/x-ndjson' | 'text/csv'): AsyncGenerator<string> {
  if (format === 'text/csv') yield 'index,id,fraud_probability,decision\n';
  for (let chunk = 0; chunk < job.chunks; chunk++) {
    const bytes = await store.readResultChunk(job.jobId, chunk);
    // Only expiry removes a result chunk of a completed job; the response cannot be finished.
    if (!bytes) throw new Error(`result chunk ${chunk} of job ${job.jobId} is gone (expired)`);
    const results = decodeResults(bytes);
    const base = chunk * job.chunkSize;
    // Small pieces, built without an object per result: the download's garbage, not the job,
    // would otherwise set the api's peak memory.
    for (let from = 0; from < results.length; from += STREAM_PIECE_ROWS) {
      let piece = '';
      for (let row = from; row < Math.min(results.length, from + STREAM_PIECE_ROWS); row++) {
        const index = base + row;
        const p = results.probabilities[row]!;
        const decision = decisionOf(results.decisions[row]!);
        const id = results.ids?.[row];
        piece +=
          format === 'text/csv'
            ? `${index},${csvCell(id ?? '')},${p},${decision}\n`
            : `{"index":${index},${id ? `"id":${JSON.stringify(id)},` : ''}"fraud_probability":${p},"decision":"${decision}"}\n`;
      }
      yield piece;
    }
  }
}

export async function jobsRoutes(app: FastifyInstance, { config }: JobsRoutesOptions) {
  const { prefix } = config.redis;
  const { chunkSize, resultTtlSeconds } = config.bulk;
  const { maxJobRecords, jobBodyLimitBytes, jobBodyTimeoutMs } = config.api;
  // The producer connection of the online plugin: fail-fast, shared, closed by that plugin.
  const store = createBulkStore(app.redis, prefix);
  const queue = app.queues.bulk;
  const submitDeps: SubmitDeps = {
    store,
    queue,
    chunkSize,
    maxRecords: maxJobRecords,
    ttlSeconds: resultTtlSeconds,
    stagingTtlSeconds: config.bulk.stagingTtlSeconds,
    pauseBeforeEnqueueMs: config.bulk.testPauseBeforeEnqueueMs,
  };

  // This scope's bodies are streams: the default JSON parser (which buffers) gives way to one that
  // passes the request through. Other content types get Fastify's 415.
  app.removeContentTypeParser('application/json');
  app.addContentTypeParser(Object.keys(BODY_FORMATS), (_request, payload, done) => done(null, payload));

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
    if (!job || job.staging || job.owner !== owner) throw new NotFoundError(`No job ${jobId}`);
    return job;
  };

  const accept = (reply: FastifyReply, jobId: string, status: JobStatusName) => {
    const statusUrl = `/jobs/${jobId}`;
    reply.code(202).header('location', statusUrl);
    return { job_id: jobId, status, status_url: statusUrl, results_url: `${statusUrl}/results` };
  };

  const routes = app.withTypeProvider<ZodTypeProvider>();

  routes.post(
    '/jobs',
    {
      bodyLimit: jobBodyLimitBytes,
      config: { bodyTimeoutMs: jobBodyTimeoutMs },
      schema: {
        summary: `Submit 1..${maxJobRecords} records for bulk scoring: {records: [...]} JSON, NDJSON, or CSV with a header row`,
        headers: IdempotencyHeadersSchema,
        response: { 202: JobAcceptedSchema, ...errors(400, 401, 408, 413, 415, 503, 507) },
      },
    },
    async (request, reply) => {
      const format = mediaType(request.headers['content-type']) as BodyFormat;
      const parse = BODY_FORMATS[format];
      const body = request.body as Readable | undefined;
      if (!parse || !body || typeof body[Symbol.asyncIterator] !== 'function') {
        throw new UnsupportedMediaTypeError(`POST /jobs takes ${Object.keys(BODY_FORMATS).join(', ')}`);
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
        try {
          outcome = await submitBulkJob(submitDeps, {
            rows: parse(limitBytes(source, jobBodyLimitBytes)),
            owner: request.owner,
            idempotencyKey,
            replaces: known.stale,
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
        request.log.info({ job_id: outcome.jobId }, 'bulk job accepted');
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
    async (request) => guard(async () => renderStatus(await readOwnedJob(request.params.id, request.owner))),
  );

  routes.get(
    '/jobs/:id/results',
    {
      schema: {
        summary:
          'Results in input order: a JSON page (offset, limit), or with Accept: application/x-ndjson or text/csv every result, streamed',
        params: JobIdParamsSchema,
        querystring: ResultsQuerySchema,
        response: { 200: ResultsPageSchema, ...errors(401, 404, 409, 503) },
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
        if (format !== 'application/json') {
          // A stream is sent as it is, past the page schema's serializer.
          const raw = reply as FastifyReply;
          raw.type(format === 'text/csv' ? 'text/csv; charset=utf-8' : 'application/x-ndjson');
          return raw.send(Readable.from(streamResults(store, job, format), { objectMode: false }));
        }
        const { offset, limit } = request.query;
        const end = Math.min(job.total, offset + limit);
        const results: JobResult[] = [];
        for (let chunk = Math.floor(offset / job.chunkSize); chunk * job.chunkSize < end; chunk++) {
          const bytes = await store.readResultChunk(job.jobId, chunk);
          if (!bytes) throw new NotFoundError(`No job ${job.jobId}`);
          const chunkResults = decodeResults(bytes);
          const base = chunk * job.chunkSize;
          for (let index = Math.max(offset, base); index < Math.min(end, base + chunkResults.length); index++) {
            results.push(resultAt(chunkResults, index - base, index));
          }
        }
        return { results, next_offset: end < job.total ? end : null };
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
