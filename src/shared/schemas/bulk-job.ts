// What a client sees of a bulk job: the 202 on submission, its status, and a page of results.
import { z } from 'zod';
import { DecisionSchema } from './prediction.ts';
import { BulkRecordSchema } from './record.ts';

export const JOB_STATUSES = ['queued', 'running', 'completed', 'failed', 'cancelled'] as const;
export const JobStatusNameSchema = z.enum(JOB_STATUSES);
export type JobStatusName = z.infer<typeof JobStatusNameSchema>;

export const JobIdParamsSchema = z.strictObject({ id: z.string().min(1).max(64).describe('job_id of the 202 that made the job') });

export const JobAcceptedSchema = z
  .object({
    job_id: z.string(),
    status: JobStatusNameSchema,
    status_url: z.string(),
    results_url: z.string(),
  })
  .meta({ id: 'JobAccepted' });
export type JobAccepted = z.infer<typeof JobAcceptedSchema>;

const timestamp = z.iso.datetime();

export const JobStatusSchema = z
  .object({
    job_id: z.string(),
    status: JobStatusNameSchema,
    progress: z.object({ total: z.int().nonnegative(), done: z.int().nonnegative().describe('records scored so far') }),
    model_name: z.string().describe('the model the job is for'),
    model_version: z.string().nullable().describe("the pinned version's display version (what it names in replies); null until known"),
    model_version_number: z.int().positive().nullable().describe('the version the job is pinned to at submission; every record is scored by it'),
    scored_by: z.record(z.string(), z.int().nonnegative()).describe('records scored so far, per display version'),
    waiting_for: z.string().optional().describe('why a queued or running job is not moving: its pinned version is held by no live worker'),
    created_at: timestamp,
    started_at: timestamp.nullable(),
    finished_at: timestamp.nullable(),
    expires_at: timestamp.describe('job state and results are deleted then (RESULT_TTL_SECONDS after submission)'),
    error: z.string().nullable().describe('why a failed job failed'),
  })
  .meta({ id: 'JobStatus' });
export type JobStatus = z.infer<typeof JobStatusSchema>;

export const JobResultSchema = z
  .object({
    index: z.number().int().describe('position of the record in the input, from 0'),
    id: z.string().optional().describe("the record's id, when it had one"),
    fraud_probability: z.number().min(0).max(1),
    decision: DecisionSchema,
  })
  .meta({ id: 'JobResult' });
export type JobResult = z.infer<typeof JobResultSchema>;

export const MAX_RESULTS_PAGE = 10_000;
export const DEFAULT_RESULTS_PAGE = 1000;

export const ResultsQuerySchema = z.strictObject({
  offset: z.coerce.number().int().min(0).default(0).describe('index of the first result of the page (JSON only)'),
  limit: z.coerce.number().int().min(1).max(MAX_RESULTS_PAGE).default(DEFAULT_RESULTS_PAGE).describe('results per page (JSON only)'),
});

export const ModelJobResultSchema = z
  .looseObject({
    index: z.number().int().describe('position of the record in the input, from 0'),
    id: z.string().optional().describe("the record's id, when it had one"),
  })
  .describe("A job of any model but fraud: each of the model's outputs by name")
  .meta({ id: 'ModelJobResult' });

export const ModelResultsPageSchema = z
  .object({
    results: z.array(ModelJobResultSchema),
    next_offset: z.number().int().nullable().describe('offset of the next page; null after the last'),
  })
  .meta({ id: 'ModelJobResultsPage' });

export const ResultsPageSchema = z
  .object({
    results: z.array(JobResultSchema),
    next_offset: z.number().int().nullable().describe('offset of the next page; null after the last'),
  })
  .meta({ id: 'JobResultsPage' });
export type ResultsPage = z.infer<typeof ResultsPageSchema>;

export const DEFAULT_JOBS_PAGE = 20;
export const MAX_JOBS_PAGE = 100;

/** Where a listing stopped: the created_at and id of the last job it looked at. */
export type JobCursor = { createdAt: number; jobId: string };

const CURSOR_TEXT = /^(\d{1,15})\.([A-Za-z0-9_-]{1,64})$/;

/** Opaque to clients: they hand back next_cursor as it is. */
export function encodeJobCursor(cursor: JobCursor): string {
  return Buffer.from(`${cursor.createdAt}.${cursor.jobId}`).toString('base64url');
}

const JobCursorSchema = z
  .string()
  .max(128)
  .transform((text, ctx): JobCursor => {
    const match = CURSOR_TEXT.exec(Buffer.from(text, 'base64url').toString());
    if (!match) {
      ctx.addIssue({ code: 'custom', message: 'Not a cursor this service gave out (next_cursor of a previous page)' });
      return z.NEVER;
    }
    return { createdAt: Number(match[1]), jobId: match[2]! };
  })
  .describe('next_cursor of the previous page; omit for the first page');

export const JobListQuerySchema = z.strictObject({
  status: JobStatusNameSchema.optional().describe('only jobs in this status'),
  limit: z.coerce.number().int().min(1).max(MAX_JOBS_PAGE).default(DEFAULT_JOBS_PAGE).describe('jobs per page'),
  cursor: JobCursorSchema.optional(),
});

export const JobListSchema = z
  .object({
    jobs: z.array(JobStatusSchema).describe('newest first'),
    next_cursor: z.string().nullable().describe('pass as ?cursor= for the next page; null after the last. A page may hold fewer jobs than limit.'),
    queued_records: z
      .number()
      .int()
      .nonnegative()
      .describe("Records of the caller's jobs not yet scored (queued and running jobs), what TENANT_MAX_QUEUED_RECORDS caps"),
  })
  .meta({ id: 'JobList' });
export type JobList = z.infer<typeof JobListSchema>;

/** The application/json body of POST /jobs: parsed as a stream by the route, documented here. */
export function bulkJobRequestSchema(maxRecords: number) {
  return z.strictObject({ records: z.array(BulkRecordSchema).min(1).max(maxRecords) }).meta({ id: 'BulkJobRequest' });
}
