// What a client call can fail with: the service said no (ScoringError, with the contract's
// error body as it came), or the service could not be reached at all (UnreachableError).
import type { ErrorDetail } from '../shared/errors.ts';

export type ErrorBody = { error: { code: string; message: string; details?: ErrorDetail[] }; request_id?: string };

/** The service answered with an error status; code, message and details are the service's own. */
export class ScoringError extends Error {
  readonly status: number;
  readonly code: string;
  readonly details: ErrorDetail[];
  readonly requestId: string | undefined;
  /** Seconds from Retry-After, when the service sent one (429, 503). */
  readonly retryAfterSeconds: number | undefined;

  constructor(status: number, body: ErrorBody, retryAfterSeconds?: number) {
    super(body.error.message);
    this.name = this.constructor.name;
    this.status = status;
    this.code = body.error.code;
    this.details = body.error.details ?? [];
    this.requestId = body.request_id;
    this.retryAfterSeconds = retryAfterSeconds;
  }

  /** Reads an error response; a body not in the contract's shape (a proxy's page) keeps its text as the message. */
  static async from(res: Response): Promise<ScoringError> {
    const text = await res.text().catch(() => '');
    const retryAfter = Number(res.headers.get('retry-after') ?? NaN);
    let body: ErrorBody | undefined;
    try {
      const parsed = JSON.parse(text) as Partial<ErrorBody>;
      if (typeof parsed.error?.code === 'string' && typeof parsed.error.message === 'string') body = parsed as ErrorBody;
    } catch {
      // not JSON: described below from the status
    }
    body ??= { error: { code: `http_${res.status}`, message: text.trim() || res.statusText || `HTTP ${res.status}` } };
    return new ScoringError(res.status, body, Number.isFinite(retryAfter) ? retryAfter : undefined);
  }
}

/** Nothing answered at the service's address (refused, unknown host, timed out connecting). */
export class UnreachableError extends Error {
  readonly url: string;

  constructor(url: string, cause: unknown) {
    super(`The scoring service does not answer at ${url}${causeText(cause)}`, { cause });
    this.name = this.constructor.name;
    this.url = url;
  }
}

/** A job ended without results (failed or cancelled) while the caller waited for it. */
export class JobEndedError extends Error {
  readonly jobId: string;
  readonly status: string;

  constructor(jobId: string, status: string, reason: string | null) {
    super(`Job ${jobId} ${status}${reason ? `: ${reason}` : ''}`);
    this.name = this.constructor.name;
    this.jobId = jobId;
    this.status = status;
  }
}

// Errors of the connection itself, before any answer; anything else (a reset mid-upload) is not "unreachable".
const CONNECT_ERRORS = new Set(['ECONNREFUSED', 'ENOTFOUND', 'EAI_AGAIN', 'EHOSTUNREACH', 'ENETUNREACH', 'UND_ERR_CONNECT_TIMEOUT']);

export function isConnectError(err: unknown): boolean {
  const cause = (err as { cause?: { code?: string; errors?: { code?: string }[] } } | undefined)?.cause;
  if (!cause) return false;
  if (cause.code && CONNECT_ERRORS.has(cause.code)) return true;
  // Happy-eyeballs tries every address and reports an AggregateError of them.
  return Boolean(cause.errors?.length && cause.errors.every((e) => e.code && CONNECT_ERRORS.has(e.code)));
}

function causeText(cause: unknown): string {
  const c = (cause as { cause?: { code?: string; message?: string } } | undefined)?.cause;
  return c?.code ? ` (${c.code})` : '';
}
