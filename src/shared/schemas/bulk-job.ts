// What a client sees of a bulk job: the 202 on submission, its status, and a page of results.
import { z } from 'zod';
import { DecisionSchema } from './prediction.ts';

export const JOB_STATUSES = ['queued', 'running', 'completed', 'failed', 'cancelled'] as const;
export const JobStatusNameSchema = z.enum(JOB_STATUSES);
export type JobStatusName = z.infer<typeof JobStatusNameSchema>;

export const JobIdParamsSchema = z.strictObject({ id: z.string().min(1).max(64) });

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
    progress: z.object({ total: z.number().int(), done: z.number().int().describe('records scored so far') }),
    model_name: z.string().describe('the model the job is for'),
    model_version: z
      .string()
      .nullable()
      .describe("the pinned version's display version (what it names in replies); null until known"),
    model_version_number: z
      .number()
      .int()
      .nullable()
      .describe('the version the job is pinned to at submission; every record is scored by it'),
    scored_by: z.record(z.string(), z.number().int()).describe('records scored so far, per display version'),
    waiting_for: z
      .string()
      .optional()
      .describe('why a queued or running job is not moving: its pinned version is held by no live worker'),
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
  offset: z.coerce.number().int().min(0).default(0),
  limit: z.coerce.number().int().min(1).max(MAX_RESULTS_PAGE).default(DEFAULT_RESULTS_PAGE),
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
