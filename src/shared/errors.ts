// The one error map: every code the service answers with, its HTTP status, and the status it
// takes on the Open Inference Protocol's transports (REST /v2 and gRPC). Every error a client sees
// is an AppError subclass, rendered as {"error": {code, message, details?}, "request_id"} (the
// protocol routes: {"error": message}; gRPC: the status and the message).

/** gRPC status codes (grpc/status.h), here so shared code need not load grpc-js. */
export const GRPC_STATUS = {
  CANCELLED: 1,
  INVALID_ARGUMENT: 3,
  DEADLINE_EXCEEDED: 4,
  NOT_FOUND: 5,
  PERMISSION_DENIED: 7,
  RESOURCE_EXHAUSTED: 8,
  FAILED_PRECONDITION: 9,
  INTERNAL: 13,
  UNAVAILABLE: 14,
  UNAUTHENTICATED: 16,
} as const;
const G = GRPC_STATUS;

/**
 * code → HTTP status, gRPC status, and the protocol's name for the outcome (`kind`: metrics and
 * spans of protocol calls). `exposed: false` hides the message from protocol callers.
 */
export const ERROR_MAP = {
  validation_error: { http: 400, grpc: G.INVALID_ARGUMENT, kind: 'invalid_argument' },
  unauthorized: { http: 401, grpc: G.UNAUTHENTICATED, kind: 'unauthenticated' },
  forbidden: { http: 403, grpc: G.PERMISSION_DENIED, kind: 'permission_denied' },
  request_timeout: { http: 408, grpc: G.DEADLINE_EXCEEDED, kind: 'deadline_exceeded' },
  not_found: { http: 404, grpc: G.NOT_FOUND, kind: 'not_found' },
  model_not_found: { http: 404, grpc: G.NOT_FOUND, kind: 'not_found' },
  not_ready: { http: 409, grpc: G.FAILED_PRECONDITION, kind: 'failed_precondition' },
  payload_too_large: { http: 413, grpc: G.INVALID_ARGUMENT, kind: 'invalid_argument' },
  unsupported_media_type: { http: 415, grpc: G.INVALID_ARGUMENT, kind: 'invalid_argument' },
  overloaded: { http: 429, grpc: G.RESOURCE_EXHAUSTED, kind: 'overloaded' },
  quota_exceeded: { http: 429, grpc: G.RESOURCE_EXHAUSTED, kind: 'overloaded' },
  // The caller left (hung up, cancelled): nobody reads the answer, but metrics and spans say why it ended. 499 as nginx logs it.
  cancelled: { http: 499, grpc: G.CANCELLED, kind: 'cancelled' },
  // The model threw or gave a non-finite output: its message names the model and version, on every transport.
  model_error: { http: 500, grpc: G.INTERNAL, kind: 'model_error' },
  internal_error: { http: 500, grpc: G.INTERNAL, kind: 'internal', exposed: false },
  model_unavailable: { http: 503, grpc: G.UNAVAILABLE, kind: 'unavailable' },
  unavailable: { http: 503, grpc: G.UNAVAILABLE, kind: 'unavailable' },
  timeout: { http: 504, grpc: G.DEADLINE_EXCEEDED, kind: 'deadline_exceeded' },
  insufficient_storage: { http: 507, grpc: G.RESOURCE_EXHAUSTED, kind: 'insufficient_storage' },
} as const satisfies Record<string, { http: number; grpc: number; kind: string; exposed?: boolean }>;

export type ErrorCode = keyof typeof ERROR_MAP;
export type ErrorKind = (typeof ERROR_MAP)[ErrorCode]['kind'];

export function isErrorCode(code: string): code is ErrorCode {
  return Object.hasOwn(ERROR_MAP, code);
}

/** The code of an HTTP status, for errors that carry only a status (Fastify's own). */
export function codeOfStatus(status: number): ErrorCode | undefined {
  return (Object.keys(ERROR_MAP) as ErrorCode[]).find((code) => ERROR_MAP[code].http === status);
}

export type ErrorDetail = { path: string; message: string };

export type AppErrorOptions = {
  /** A code of the error map; another code needs its statusCode. */
  code: ErrorCode | (string & {});
  /** From the error map when absent. */
  statusCode?: number;
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
    this.statusCode = statusCode ?? (isErrorCode(code) ? ERROR_MAP[code].http : 500);
    this.details = details;
    this.headers = headers;
  }
}

export class ValidationError extends AppError {
  constructor(message: string, details?: ErrorDetail[]) {
    super({ code: 'validation_error', message, details });
  }
}

export class UnauthorizedError extends AppError {
  constructor() {
    super({
      code: 'unauthorized',
      message: 'A valid "Authorization: Bearer <key>" header is required',
      headers: { 'www-authenticate': 'Bearer' },
    });
  }
}

export class ForbiddenError extends AppError {
  constructor(message: string) {
    super({ code: 'forbidden', message, headers: { 'www-authenticate': 'Bearer error="insufficient_scope"' } });
  }
}

export class RequestTimeoutError extends AppError {
  constructor(timeoutMs: number) {
    super({
      code: 'request_timeout',
      message: `The request did not arrive within ${timeoutMs} ms`,
      headers: { connection: 'close' },
    });
  }
}

export class InsufficientStorageError extends AppError {
  constructor(options: { cause?: unknown } = {}) {
    super({
      ...options,
      code: 'insufficient_storage',
      message: 'Redis is out of memory; retry once jobs have finished or expired',
      headers: { 'retry-after': '30' },
    });
  }
}

export class NotFoundError extends AppError {
  constructor(message = 'Not found') {
    super({ code: 'not_found', message });
  }
}

/** No such model, version or alias. */
export class ModelNotFoundError extends AppError {
  constructor(message: string) {
    super({ code: 'model_not_found', message });
  }
}

/** The model version exists but no live worker holds it: answered at once, not after the timeout. */
export class ModelUnavailableError extends AppError {
  constructor(message: string) {
    super({ code: 'model_unavailable', message, headers: { 'retry-after': '1' } });
  }
}

export class NotReadyError extends AppError {
  constructor(message: string) {
    super({ code: 'not_ready', message });
  }
}

export class PayloadTooLargeError extends AppError {
  constructor(message: string) {
    super({ code: 'payload_too_large', message });
  }
}

export class UnsupportedMediaTypeError extends AppError {
  constructor(message: string) {
    super({ code: 'unsupported_media_type', message });
  }
}

export class OverloadedError extends AppError {
  readonly retryAfterSeconds: number;

  /** retryAfterSeconds: when the work already waiting is predicted to be done (≥ 1). */
  constructor(retryAfterSeconds: number, message = 'The service is past its queue bound; retry later') {
    const seconds = Math.max(1, Math.ceil(retryAfterSeconds));
    super({ code: 'overloaded', message, headers: { 'retry-after': String(seconds) } });
    this.retryAfterSeconds = seconds;
  }
}

export class QuotaExceededError extends AppError {
  readonly retryAfterSeconds: number;

  /** retryAfterSeconds: when enough of the key's waiting records are predicted to be scored (≥ 1). */
  constructor(retryAfterSeconds: number, message: string) {
    const seconds = Math.max(1, Math.ceil(retryAfterSeconds));
    super({ code: 'quota_exceeded', message, headers: { 'retry-after': String(seconds) } });
    this.retryAfterSeconds = seconds;
  }
}

/** The model failed on the call's records; the message names the model and the failure, never a stack. */
export class ModelError extends AppError {
  constructor(message: string, options: { cause?: unknown } = {}) {
    super({ ...options, code: 'model_error', message });
  }
}

export class UnavailableError extends AppError {
  constructor(message = 'Redis does not answer', options: { cause?: unknown } = {}) {
    super({ ...options, code: 'unavailable', message, headers: { 'retry-after': '1' } });
  }
}

export class TimeoutError extends AppError {
  constructor(timeoutMs: number) {
    super({ code: 'timeout', message: `No worker answered within ${timeoutMs} ms` });
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
