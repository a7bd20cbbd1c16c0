// The one place error codes meet HTTP statuses. Every error a client sees is an AppError
// subclass, rendered as {"error": {code, message, details?}, "request_id"}.

export type ErrorDetail = { path: string; message: string };

export type AppErrorOptions = {
  code: string;
  statusCode: number;
  message: string;
  details?: ErrorDetail[] | undefined;
  headers?: Record<string, string>;
  cause?: unknown;
};

export class AppError extends Error {
  readonly code: string;
  readonly statusCode: number;
  readonly details: ErrorDetail[] | undefined;
  readonly headers: Record<string, string>;

  constructor({ code, statusCode, message, details, headers = {}, cause }: AppErrorOptions) {
    super(message, cause === undefined ? undefined : { cause });
    this.name = this.constructor.name;
    this.code = code;
    this.statusCode = statusCode;
    this.details = details;
    this.headers = headers;
  }
}

export class ValidationError extends AppError {
  constructor(message: string, details?: ErrorDetail[]) {
    super({ code: 'validation_error', statusCode: 400, message, details });
  }
}

export class UnauthorizedError extends AppError {
  constructor() {
    super({
      code: 'unauthorized',
      statusCode: 401,
      message: 'A valid "Authorization: Bearer <key>" header is required',
      headers: { 'www-authenticate': 'Bearer' },
    });
  }
}

export class ForbiddenError extends AppError {
  constructor(message: string) {
    super({ code: 'forbidden', statusCode: 403, message, headers: { 'www-authenticate': 'Bearer error="insufficient_scope"' } });
  }
}

export class RequestTimeoutError extends AppError {
  constructor(timeoutMs: number) {
    super({
      code: 'request_timeout',
      statusCode: 408,
      message: `The request did not arrive within ${timeoutMs} ms`,
      headers: { connection: 'close' },
    });
  }
}

export class InsufficientStorageError extends AppError {
  constructor() {
    super({
      code: 'insufficient_storage',
      statusCode: 507,
      message: 'Redis is out of memory; retry once jobs have finished or expired',
      headers: { 'retry-after': '30' },
    });
  }
}

export class NotFoundError extends AppError {
  constructor(message = 'Not found') {
    super({ code: 'not_found', statusCode: 404, message });
  }
}

/** No such model, version or alias. */
export class ModelNotFoundError extends AppError {
  constructor(message: string) {
    super({ code: 'model_not_found', statusCode: 404, message });
  }
}

/** The model version exists but no live worker holds it: answered at once, not after the timeout. */
export class ModelUnavailableError extends AppError {
  constructor(message: string) {
    super({ code: 'model_unavailable', statusCode: 503, message, headers: { 'retry-after': '1' } });
  }
}

export class NotReadyError extends AppError {
  constructor(message: string) {
    super({ code: 'not_ready', statusCode: 409, message });
  }
}

export class PayloadTooLargeError extends AppError {
  constructor(message: string) {
    super({ code: 'payload_too_large', statusCode: 413, message });
  }
}

export class UnsupportedMediaTypeError extends AppError {
  constructor(message: string) {
    super({ code: 'unsupported_media_type', statusCode: 415, message });
  }
}

export class OverloadedError extends AppError {
  readonly retryAfterSeconds: number;

  /** retryAfterSeconds: when the work already waiting is predicted to be done (≥ 1). */
  constructor(retryAfterSeconds: number, message = 'The service is past its queue bound; retry later') {
    const seconds = Math.max(1, Math.ceil(retryAfterSeconds));
    super({ code: 'overloaded', statusCode: 429, message, headers: { 'retry-after': String(seconds) } });
    this.retryAfterSeconds = seconds;
  }
}

export class QuotaExceededError extends AppError {
  readonly retryAfterSeconds: number;

  /** retryAfterSeconds: when enough of the key's waiting records are predicted to be scored (≥ 1). */
  constructor(retryAfterSeconds: number, message: string) {
    const seconds = Math.max(1, Math.ceil(retryAfterSeconds));
    super({ code: 'quota_exceeded', statusCode: 429, message, headers: { 'retry-after': String(seconds) } });
    this.retryAfterSeconds = seconds;
  }
}

/** The model failed on the call's records; the message names the model and the failure, never a stack. */
export class ModelError extends AppError {
  constructor(message: string) {
    super({ code: 'model_error', statusCode: 500, message });
  }
}

export class UnavailableError extends AppError {
  constructor(message = 'Redis does not answer') {
    super({ code: 'unavailable', statusCode: 503, message, headers: { 'retry-after': '1' } });
  }
}

export class TimeoutError extends AppError {
  constructor(timeoutMs: number) {
    super({ code: 'timeout', statusCode: 504, message: `No worker answered within ${timeoutMs} ms` });
  }
}

/** zod issues → contract details, one per problem, unknown keys named in the path. */
export function issuesToDetails(
  issues: readonly { path: readonly PropertyKey[]; message: string; code?: string; keys?: readonly string[] }[],
  prefix: readonly PropertyKey[] = [],
): ErrorDetail[] {
  const details: ErrorDetail[] = [];
  for (const issue of issues) {
    const base = [...prefix, ...issue.path];
    if (issue.code === 'unrecognized_keys' && issue.keys) {
      for (const key of issue.keys) {
        details.push({ path: [...base, key].map(String).join('.'), message: `Unknown field "${key}"` });
      }
    } else {
      details.push({ path: base.map(String).join('.'), message: issue.message });
    }
  }
  return details;
}
