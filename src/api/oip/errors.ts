// The protocol layer's errors. Their statuses on both transports come from the service's one error
// map (shared/errors.ts): an OipError is an AppError whose code the protocol names by its kind, and
// toOipError() carries any service error across with its meaning (model_error as INTERNAL with the
// model's message, insufficient_storage as 507 / RESOURCE_EXHAUSTED, unavailable as 503 / UNAVAILABLE).
import type { status as GrpcStatus } from '@grpc/grpc-js';
import { AppError, ERROR_MAP, codeOfStatus, isErrorCode, type ErrorCode, type ErrorKind } from '../../shared/errors.ts';

export type OipErrorKind = ErrorKind;

/** The service code a protocol error of each kind carries. */
const CODE_OF_KIND: Record<OipErrorKind, ErrorCode> = {
  invalid_argument: 'validation_error',
  unauthenticated: 'unauthorized',
  permission_denied: 'forbidden',
  not_found: 'not_found',
  failed_precondition: 'not_ready',
  overloaded: 'overloaded',
  cancelled: 'cancelled',
  model_error: 'model_error',
  internal: 'internal_error',
  unavailable: 'unavailable',
  deadline_exceeded: 'timeout',
  insufficient_storage: 'insufficient_storage',
};

export class OipError extends AppError {
  readonly kind: OipErrorKind;
  /** Seconds a client should wait before retrying (Retry-After / retry-after metadata). */
  readonly retryAfterSeconds: number | undefined;

  constructor(kind: OipErrorKind, message: string, retryAfterSeconds?: number, options: { code?: ErrorCode; cause?: unknown } = {}) {
    const code = options.code ?? CODE_OF_KIND[kind];
    super({
      code,
      message,
      cause: options.cause,
      ...(retryAfterSeconds === undefined ? {} : { headers: { 'retry-after': String(retryAfterSeconds) } }),
    });
    this.kind = kind;
    this.retryAfterSeconds = retryAfterSeconds;
  }

  /** The code's HTTP status, from the one map (e.g. 413 for payload_too_large, an invalid argument). */
  get httpStatus(): number {
    return ERROR_MAP[this.mapped].http;
  }

  get grpcCode(): GrpcStatus {
    return ERROR_MAP[this.mapped].grpc as number as GrpcStatus;
  }

  /** The map's entry this error is answered by. */
  get mapped(): ErrorCode {
    return isErrorCode(this.code) ? this.code : CODE_OF_KIND[this.kind];
  }
}

/** A bad tensor or request; the message names the input or field. */
export class InvalidArgumentError extends OipError {
  constructor(message: string) {
    super('invalid_argument', message);
  }
}

/** The protocol's "no such model or version", in its own words. */
export class UnknownModelError extends OipError {
  constructor(name: string, version?: string) {
    super('not_found', version ? `Model "${name}" has no version "${version}"` : `Unknown model "${name}"`);
  }
}

export class NotServableError extends OipError {
  constructor(message: string) {
    super('unavailable', message, 1);
  }
}

export class DeadlineExceededError extends OipError {
  constructor(message = 'The deadline passed before the model answered') {
    super('deadline_exceeded', message);
  }
}

export class UnauthenticatedError extends OipError {
  constructor() {
    super('unauthenticated', 'A valid "authorization: Bearer <key>" is required');
  }
}

/**
 * Any error → an OipError, by the one error map. AppErrors keep their code, message and
 * Retry-After; Fastify's own errors their status; anything else becomes `internal`, whose message
 * is not shown to the client (the original is kept as the cause, for the log).
 */
export function toOipError(error: unknown): OipError {
  if (error instanceof OipError) return error;
  if ((error as Error | null)?.name === 'AbortError') return new OipError('cancelled', 'The caller cancelled the call', undefined, { cause: error });
  const status = (error as { statusCode?: unknown } | null)?.statusCode;
  const code = error instanceof AppError && isErrorCode(error.code) ? error.code : typeof status === 'number' ? codeOfStatus(status) : undefined;
  if (code && !('exposed' in ERROR_MAP[code])) {
    const retryAfter = error instanceof AppError ? Number(error.headers['retry-after']) : NaN;
    return new OipError(ERROR_MAP[code].kind, (error as Error).message, Number.isFinite(retryAfter) ? retryAfter : undefined, { code, cause: error });
  }
  return new OipError('internal', 'Internal server error', undefined, { cause: error });
}

/** An error worth an error log line: not a protocol outcome, not the abort of a caller who left. */
export function isUnexpected(error: unknown): boolean {
  return toOipError(error).kind === 'internal';
}
