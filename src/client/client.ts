// A typed client of the scoring service: online predictions, bulk jobs from files on disk, and
// their results written to files. Used by the `scoring` CLI and the end-to-end tests.
import type { FraudRecord } from '../shared/schemas/record.ts';
import type { Prediction } from '../shared/schemas/prediction.ts';
import type { Routing, ShadowSummary } from '../shared/schemas/routing.ts';
import type { JobAccepted, JobStatus, JobStatusName, ResultsPage } from '../shared/schemas/bulk-job.ts';
import { MAX_RESULTS_PAGE } from '../shared/schemas/bulk-job.ts';
import { isConnectError, ScoringError, UnreachableError } from './errors.ts';
import { contentTypeFor, fileBody, UPLOAD_EXTENSIONS, type UploadProgress } from './upload.ts';
import { CSV_HEADER, formatResult, LineWriter, ResultsFileError, resultsAlreadyWritten, type ResultsFormat } from './results-file.ts';

export type ClientOptions = {
  /** The api's base URL, e.g. http://127.0.0.1:8080. */
  url: string;
  /** A key of API_KEYS, sent as `Authorization: Bearer <key>`. */
  apiKey?: string | undefined;
};

export type BatchResult = { results: Omit<Prediction, 'model_version'>[]; model_version: string; latency_ms: number };

/** A model as GET /models lists it: the fields the client reads of the service's model view. */
export type ModelListing = {
  name: string;
  versions: { version: number; state: string; display_version?: string }[];
  aliases: Record<string, number>;
  routing: Routing;
  default_version: number | null;
  problems: string[];
};

export type JobList = { jobs: JobStatus[]; next_cursor: string | null };

export type SubmitOptions = {
  /** Model name (and optionally version or alias) for the job; the service's default otherwise. */
  model?: string | undefined;
  version?: string | undefined;
  alias?: string | undefined;
  /** The same key returns the same job (a retried upload does not make a second one). */
  idempotencyKey?: string | undefined;
  /** Overrides the content type guessed from the file's extension. */
  contentType?: string | undefined;
  onUploadProgress?: UploadProgress | undefined;
  signal?: AbortSignal | undefined;
};

export type DownloadOptions = {
  format: ResultsFormat;
  /** Results per JSON page (at most the service's MAX_RESULTS_PAGE). */
  pageSize?: number;
  onProgress?: (written: number, total: number) => void;
  signal?: AbortSignal | undefined;
};

export type DownloadOutcome = { total: number; resumedFrom: number };

const TERMINAL: ReadonlySet<JobStatusName> = new Set(['completed', 'failed', 'cancelled']);

export function isTerminal(status: JobStatusName): boolean {
  return TERMINAL.has(status);
}

export class ScoringClient {
  readonly url: string;
  readonly #headers: Record<string, string>;

  constructor(options: ClientOptions) {
    this.url = options.url.replace(/\/+$/, '');
    this.#headers = options.apiKey ? { authorization: `Bearer ${options.apiKey}` } : {};
  }

  predict(record: FraudRecord, options: { timeoutMs?: number } = {}): Promise<Prediction> {
    const query = options.timeoutMs === undefined ? '' : `?timeout_ms=${options.timeoutMs}`;
    return this.#json('POST', `/predict${query}`, record);
  }

  predictBatch(records: readonly FraudRecord[]): Promise<BatchResult> {
    return this.#json('POST', '/predict/batch', { records });
  }

  /** The models of the repository: versions, aliases and routing. */
  async listModels(): Promise<ModelListing[]> {
    return (await this.#json<{ models: ModelListing[] }>('GET', '/models')).models;
  }

  /** How a model's shadow version compares with the version that answered, over the newest compared records. */
  shadowSummary(model: string): Promise<ShadowSummary> {
    return this.#json('GET', `/models/${encodeURIComponent(model)}/shadow`);
  }

  /** Uploads a CSV, NDJSON or JSON file as a bulk job, streamed from disk. */
  async submitJob(path: string, options: SubmitOptions = {}): Promise<JobAccepted> {
    const contentType = options.contentType ?? contentTypeFor(path);
    if (!contentType) throw new TypeError(`${path}: the file name must end in ${UPLOAD_EXTENSIONS.join(', ')}`);
    const { body } = await fileBody(path, options.onUploadProgress);
    const query = new URLSearchParams();
    for (const key of ['model', 'version', 'alias'] as const) if (options[key]) query.set(key, options[key]);
    const headers: Record<string, string> = { 'content-type': contentType };
    if (options.idempotencyKey) headers['idempotency-key'] = options.idempotencyKey;
    const res = await this.#fetch(`/jobs${query.size ? `?${query}` : ''}`, {
      method: 'POST',
      headers,
      body: body as unknown as RequestInit['body'],
      // A streamed request body must say so (fetch's half-duplex: the answer comes after the upload).
      duplex: 'half',
      signal: options.signal,
    } as RequestInit);
    return (await res.json()) as JobAccepted;
  }

  jobStatus(jobId: string): Promise<JobStatus> {
    return this.#json('GET', `/jobs/${encodeURIComponent(jobId)}`);
  }

  cancel(jobId: string): Promise<JobStatus> {
    return this.#json('DELETE', `/jobs/${encodeURIComponent(jobId)}`);
  }

  listJobs(query: { status?: JobStatusName | undefined; limit?: number | undefined; cursor?: string | undefined } = {}): Promise<JobList> {
    const params = new URLSearchParams();
    if (query.status) params.set('status', query.status);
    if (query.limit !== undefined) params.set('limit', String(query.limit));
    if (query.cursor) params.set('cursor', query.cursor);
    return this.#json('GET', `/jobs${params.size ? `?${params}` : ''}`);
  }

  resultsPage(jobId: string, offset: number, limit: number, signal?: AbortSignal): Promise<ResultsPage> {
    return this.#json('GET', `/jobs/${encodeURIComponent(jobId)}/results?offset=${offset}&limit=${limit}`, undefined, signal);
  }

  /** Every result of a completed job as the service streams it (NDJSON or CSV text). */
  async resultsStream(jobId: string, format: ResultsFormat, signal?: AbortSignal): Promise<ReadableStream<Uint8Array>> {
    const accept = format === 'csv' ? 'text/csv' : 'application/x-ndjson';
    const res = await this.#fetch(`/jobs/${encodeURIComponent(jobId)}/results`, { headers: { accept }, signal: signal ?? null });
    return res.body!;
  }

  /**
   * Writes every result of a completed job to `path`, continuing a partial file where it stopped.
   * Only one page is in memory at a time.
   */
  async downloadResults(jobId: string, path: string, options: DownloadOptions): Promise<DownloadOutcome> {
    const { format, onProgress, signal } = options;
    const pageSize = Math.min(options.pageSize ?? MAX_RESULTS_PAGE, MAX_RESULTS_PAGE);
    const partial = await resultsAlreadyWritten(path, format);
    const resumedFrom = partial.results;
    const status = await this.jobStatus(jobId);
    const total = status.progress.total;
    if (resumedFrom > total) throw new ResultsFileError(`${path} holds ${resumedFrom} results; job ${jobId} has ${total}`);
    const out = new LineWriter(path);
    try {
      if (partial.empty && format === 'csv') await out.write(CSV_HEADER + '\n');
      let offset: number | null = resumedFrom < total ? resumedFrom : null;
      onProgress?.(resumedFrom, total);
      while (offset !== null) {
        const page = await this.resultsPage(jobId, offset, pageSize, signal);
        let text = '';
        for (const result of page.results) text += formatResult(result, format);
        await out.write(text);
        offset = page.next_offset;
        onProgress?.(offset ?? total, total);
      }
    } finally {
      await out.close();
    }
    return { total, resumedFrom };
  }

  async #json<T>(method: string, path: string, body?: unknown, signal?: AbortSignal): Promise<T> {
    const init: RequestInit = { method, signal: signal ?? null };
    if (body !== undefined) {
      init.headers = { 'content-type': 'application/json' };
      init.body = JSON.stringify(body);
    }
    const res = await this.#fetch(path, init);
    return (await res.json()) as T;
  }

  async #fetch(path: string, init: RequestInit): Promise<Response> {
    let res: Response;
    try {
      res = await fetch(this.url + path, { ...init, headers: { ...this.#headers, ...(init.headers as Record<string, string>) } });
    } catch (err) {
      if (isConnectError(err)) throw new UnreachableError(this.url, err);
      throw err;
    }
    if (!res.ok) throw await ScoringError.from(res);
    return res;
  }
}
