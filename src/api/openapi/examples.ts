// The examples of the OpenAPI document, built at start from examples.json (records of the fraud
// data generator as the committed model scores them; scripts/openapi-examples.ts writes it). Text
// bodies are rendered by the service's own result formatter, so they read exactly as it answers.
import data from './examples.json' with { type: 'json' };
import { decisionCode, type ChunkResults } from '../../shared/bulk-chunk.ts';
import { DECISIONS, type Decision } from '../../shared/schemas/prediction.ts';
import { encodeJobCursor, type JobStatus } from '../../shared/schemas/bulk-job.ts';
import { CSV_HEADER, formatResult, type ResultFormat } from '../bulk/results-format.ts';

export type Example = { summary?: string; description?: string; value: unknown };
export type Examples = Record<string, Example>;

const decisions = data.predictions.map((p) => DECISIONS.find((d) => d === p.decision)!) as Decision[];
const modelVersion = data.model_version;
/** The version of the committed model, as replies name it. */
export const EXAMPLE_MODEL_VERSION = modelVersion;
const { approve, review } = data.thresholds;
const band = { approve: `below ${approve}`, review: `from ${approve} to below ${review}`, decline: `${review} and above` } as const;

export const predictRequestExamples: Examples = Object.fromEntries(
  data.predictions.map((p, i) => [decisions[i]!, { summary: `A transaction the model scores ${decisions[i]}`, value: p.record }]),
);

export const predictResponseExamples: Examples = Object.fromEntries(
  data.predictions.map((p, i) => [
    decisions[i]!,
    {
      summary: `${decisions[i]}: probability ${band[decisions[i]!]}`,
      value: { fraud_probability: p.fraud_probability, decision: decisions[i], model_version: modelVersion },
    },
  ]),
);

export const batchRequestExamples: Examples = {
  three: { summary: 'Three transactions, one of each decision', value: { records: data.predictions.map((p) => p.record) } },
};

export const batchResponseExamples: Examples = {
  three: {
    summary: 'Results in input order',
    value: {
      results: data.predictions.map((p, i) => ({ fraud_probability: p.fraud_probability, decision: decisions[i] })),
      model_version: modelVersion,
      latency_ms: 4.127,
    },
  },
};

// --- bulk jobs ---

const records = data.bulk.records;
const RECORD_FIELDS = ['id', 'transaction_amount', 'merchant_category', 'card_present', 'hour_of_day', 'days_since_last_transaction'] as const;

export const jobBodyExamples: Record<'application/json' | 'application/x-ndjson' | 'text/csv', Examples> = {
  'application/json': { records: { summary: `${records.length} records with ids`, value: { records } } },
  'application/x-ndjson': {
    records: { summary: 'One record per line', value: records.map((r) => JSON.stringify(r)).join('\n') + '\n' },
  },
  'text/csv': {
    records: {
      summary: 'A header row naming the fields, then one record per line',
      value: [RECORD_FIELDS.join(','), ...records.map((r) => RECORD_FIELDS.map((f) => String(r[f])).join(','))].join('\n') + '\n',
    },
  },
};

const JOB_ID = 'Gd4ZrZ1mJr6m0Vw3xP9kqA';
const CREATED = Date.parse('2026-11-25T09:30:00.000Z');
const iso = (ms: number) => new Date(ms).toISOString();
const jobUrl = `/jobs/${JOB_ID}`;

export const jobAcceptedExamples: Examples = {
  queued: { summary: 'A new job', value: { job_id: JOB_ID, status: 'queued', status_url: jobUrl, results_url: `${jobUrl}/results` } },
};

function jobStatus(status: JobStatus['status'], done: number, over: Partial<JobStatus> = {}): JobStatus {
  return {
    job_id: JOB_ID,
    status,
    progress: { total: 250_000, done },
    model_version: done > 0 ? modelVersion : null,
    created_at: iso(CREATED),
    started_at: status === 'queued' ? null : iso(CREATED + 412),
    finished_at: status === 'completed' ? iso(CREATED + 9_874) : null,
    expires_at: iso(CREATED + 86_400_000),
    error: null,
    ...over,
  };
}

export const jobStatusExamples: Examples = {
  running: { summary: 'Scoring: 120,000 of 250,000 records done', value: jobStatus('running', 120_000) },
  completed: { summary: 'Done: results can be fetched', value: jobStatus('completed', 250_000) },
  failed: {
    summary: 'Failed, with the reason',
    value: jobStatus('failed', 120_000, {
      finished_at: iso(CREATED + 31_002),
      error: 'chunk 12 stalled twice (its workers died); the job was stopped',
    }),
  },
};

export const jobCancelledExamples: Examples = {
  cancelled: {
    summary: 'Cancelled while running: chunks not yet scored will not be',
    value: jobStatus('cancelled', 40_000, { finished_at: iso(CREATED + 3_215) }),
  },
};

export const jobListExamples: Examples = {
  page: {
    summary: 'A page of two jobs, newest first, and more after it',
    value: {
      jobs: [
        jobStatus('running', 120_000),
        {
          ...jobStatus('completed', 3),
          job_id: 'pV7cS0lq9fHh2yBz4nWm1g',
          created_at: iso(CREATED - 3_600_000),
          started_at: iso(CREATED - 3_599_800),
          finished_at: iso(CREATED - 3_599_650),
          expires_at: iso(CREATED + 82_800_000),
          progress: { total: 3, done: 3 },
        },
      ],
      next_cursor: encodeJobCursor({ createdAt: CREATED - 3_600_000, jobId: 'pV7cS0lq9fHh2yBz4nWm1g' }),
    },
  },
};

const results: ChunkResults = {
  length: data.bulk.results.length,
  probabilities: Float32Array.from(data.bulk.results.map((r) => r.fraud_probability)),
  decisions: Uint8Array.from(data.bulk.results.map((r) => decisionCode(DECISIONS.find((d) => d === r.decision)!))),
  ids: data.bulk.results.map((r) => r.id),
};

function rows(format: ResultFormat): string[] {
  return data.bulk.results.map((r, row) => formatResult(format, results, row, r.index));
}

export const resultsExamples: Record<ResultFormat, Examples> = {
  'application/json': {
    page: {
      summary: 'One page: the whole of a 3-record job',
      value: { results: rows('application/json').map((r) => JSON.parse(r)), next_offset: null },
    },
  },
  'application/x-ndjson': { all: { summary: 'Every result, one per line', value: rows('application/x-ndjson').join('\n') + '\n' } },
  'text/csv': {
    all: { summary: 'A header, then every result', value: CSV_HEADER + rows('text/csv').join('\n') + '\n' },
  },
};
