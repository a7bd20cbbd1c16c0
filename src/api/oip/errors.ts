// The errors of the protocol layer and the one table that maps them onto both transports.
// A backend may throw these, or the service's own AppErrors (mapped by their HTTP status),
// so the queue path does not need to know which protocol called it.
import { status as GrpcStatus } from '@grpc/grpc-js';
import { AppError } from '../../shared/errors.ts';

export const OIP_ERROR_KINDS = {
  invalid_argument: { http: 400, grpc: GrpcStatus.INVALID_ARGUMENT },
  unauthenticated: { http: 401, grpc: GrpcStatus.UNAUTHENTICATED },
  not_found: { http: 404, grpc: GrpcStatus.NOT_FOUND },
  overloaded: { http: 429, grpc: GrpcStatus.RESOURCE_EXHAUSTED },
  internal: { http: 500, grpc: GrpcStatus.INTERNAL },
  unavailable: { http: 503, grpc: GrpcStatus.UNAVAILABLE },
  deadline_exceeded: { http: 504, grpc: GrpcStatus.DEADLINE_EXCEEDED },
  // The caller left (hung up, cancelled): nobody reads the answer, but metrics and spans say why it ended. 499 as nginx logs it.
  cancelled: { http: 499, grpc: GrpcStatus.CANCELLED },
} as const;

export type OipErrorKind = keyof typeof OIP_ERROR_KINDS;

export class OipError extends Error {
  readonly kind: OipErrorKind;
  /** Seconds a client should wait before retrying (Retry-After / retry-after metadata). */
  readonly retryAfterSeconds: number | undefined;

  constructor(kind: OipErrorKind, message: string, retryAfterSeconds?: number) {
    super(message);
    this.name = this.constructor.name;
    this.kind = kind;
    this.retryAfterSeconds = retryAfterSeconds;
  }

  get httpStatus(): number {
    return OIP_ERROR_KINDS[this.kind].http;
  }

  get grpcCode(): GrpcStatus {
    return OIP_ERROR_KINDS[this.kind].grpc;
  }
}

/** A bad tensor or request; the message names the input or field. */
export class InvalidArgumentError extends OipError {
  constructor(message: string) {
    super('invalid_argument', message);
  }
}

export class ModelNotFoundError extends OipError {
  constructor(name: string, version?: string) {
    super('not_found', version ? `Model "${name}" has no version "${version}"` : `Unknown model "${name}"`);
  }
}

export class UnavailableError extends OipError {
  constructor(message: string) {
    super('unavailable', message, 1);
  }
}

export class DeadlineExceededError extends OipError {
  constructor(message = 'The deadline passed before the model answered') {
    super('deadline_exceeded', message);
  }
}

export class OverloadedError extends OipError {
  constructor(message = 'The service is past its queue bound; retry later', retryAfterSeconds = 1) {
    super('overloaded', message, retryAfterSeconds);
  }
}

export class UnauthenticatedError extends OipError {
  constructor() {
    super('unauthenticated', 'A valid "authorization: Bearer <key>" is required');
  }
}

const KIND_BY_HTTP_STATUS: Record<number, OipErrorKind> = {
  400: 'invalid_argument',
  401: 'unauthenticated',
  404: 'not_found',
  413: 'invalid_argument',
  415: 'invalid_argument',
  429: 'overloaded',
  503: 'unavailable',
  504: 'deadline_exceeded',
};

/**
 * Any error → an OipError. AppErrors and Fastify's own errors keep their meaning by status;
 * anything else becomes `internal`, whose message is not shown to the client.
 */
export function toOipError(error: unknown): OipError {
  if (error instanceof OipError) return error;
  if ((error as Error | null)?.name === 'AbortError') return new OipError('cancelled', 'The caller cancelled the call');
  const status = error instanceof AppError ? error.statusCode : (error as { statusCode?: unknown } | null)?.statusCode;
  const kind = typeof status === 'number' ? KIND_BY_HTTP_STATUS[status] : undefined;
  if (kind) {
    const retryAfter = error instanceof AppError ? Number(error.headers['retry-after']) : NaN;
    return new OipError(kind, (error as Error).message, Number.isFinite(retryAfter) ? retryAfter : undefined);
  }
  return new OipError('internal', 'Internal server error');
}

/** An error worth an error log line: not a protocol outcome, not the abort of a caller who left. */
export function isUnexpected(error: unknown): boolean {
  return toOipError(error).kind === 'internal';
}
