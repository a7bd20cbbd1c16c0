// The one place error codes meet HTTP statuses. Every error a client sees is an AppError
// subclass, rendered as {"error": {code, message, details?}, "request_id"}.

export type ErrorDetail = { path: string; message: string };

export class AppError extends Error {
  readonly code: string;
  readonly statusCode: number;
  readonly details: ErrorDetail[] | undefined;
  readonly headers: Record<string, string>;

  constructor(code: string, statusCode: number, message: string, details?: ErrorDetail[], headers: Record<string, string> = {}) {
    super(message);
    this.name = this.constructor.name;
    this.code = code;
    this.statusCode = statusCode;
    this.details = details;
    this.headers = headers;
  }
}

export class ValidationError extends AppError {
  constructor(message: string, details?: ErrorDetail[]) {
    super('validation_error', 400, message, details);
  }
}

export class UnauthorizedError extends AppError {
  constructor() {
    super('unauthorized', 401, 'A valid "Authorization: Bearer <key>" header is required', undefined, {
      'www-authenticate': 'Bearer',
    });
  }
}

export class ForbiddenError extends AppError {
  constructor(message: string) {
    super('forbidden', 403, message, undefined, { 'www-authenticate': 'Bearer error="insufficient_scope"' });
  }
}

export class RequestTimeoutError extends AppError {
  constructor(timeoutMs: number) {
    super('request_timeout', 408, `The request did not arrive within ${timeoutMs} ms`, undefined, { connection: 'close' });
  }
}

export class InsufficientStorageError extends AppError {
  constructor() {
    super('insufficient_storage', 507, 'Redis is out of memory; retry once jobs have finished or expired', undefined, {
      'retry-after': '30',
    });
  }
}

export class NotFoundError extends AppError {
  constructor(message = 'Not found') {
    super('not_found', 404, message);
  }
}

export class NotReadyError extends AppError {
  constructor(message: string) {
    super('not_ready', 409, message);
  }
}

export class PayloadTooLargeError extends AppError {
  constructor(message: string) {
    super('payload_too_large', 413, message);
  }
}

export class UnsupportedMediaTypeError extends AppError {
  constructor(message: string) {
    super('unsupported_media_type', 415, message);
  }
}

export class OverloadedError extends AppError {
  constructor(retryAfterSeconds: number) {
    super('overloaded', 429, 'The service is past its queue bound; retry later', undefined, {
      'retry-after': String(retryAfterSeconds),
    });
  }
}

export class UnavailableError extends AppError {
  constructor(message = 'Redis does not answer') {
    super('unavailable', 503, message, undefined, { 'retry-after': '1' });
  }
}

export class TimeoutError extends AppError {
  constructor(timeoutMs: number) {
    super('timeout', 504, `No worker answered within ${timeoutMs} ms`);
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
