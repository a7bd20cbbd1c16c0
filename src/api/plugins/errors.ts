// One error map for the whole api: AppErrors, zod schema errors, Redis refusing writes, Fastify's
// own errors (in a handler, in routing, or before a request exists at all) become the contract's
// error body; anything else is logged and answered with a bare 500 that reveals nothing. No body
// echoes a stack, a file path or the URL.
import fp from 'fastify-plugin';
import { randomUUID } from 'node:crypto';
import type { Socket } from 'node:net';
import type { Counter, Meter } from '@opentelemetry/api';
import type { FastifyError, FastifyInstance, FastifyReply, FastifyRequest } from 'fastify';
import { hasZodFastifySchemaValidationErrors } from 'fastify-type-provider-zod';
import { AppError, InsufficientStorageError, NotFoundError, codeOfStatus, issuesToDetails, type ErrorDetail } from '../../shared/errors.ts';
import { isRedisOutOfMemory } from '../../shared/redis.ts';
import type { Telemetry } from '../../shared/telemetry.ts';
import { WarningTally } from '../warning-tally.ts';

export type ErrorBody = { error: { code: string; message: string; details?: ErrorDetail[] }; request_id: string };

export function errorBody(requestId: string, code: string, message: string, details?: ErrorDetail[]): ErrorBody {
  const error: ErrorBody['error'] = { code, message };
  if (details) error.details = details;
  return { error, request_id: requestId };
}

declare module 'fastify' {
  interface FastifyRequest {
    /** The contract's error code the request was answered with (null: no error), for scoring_errors_total. */
    errorCode: string | null;
  }
}

export const ERRORS = 'scoring_errors_total';

/** Errors answered, by the contract's code: what the dashboard's "errors by code" panel shows. */
export function errorsCounter(meter: Meter): Counter {
  return meter.createCounter(ERRORS, {
    description: 'Errors answered, by code (validation_error, overloaded, model_unavailable, …), protocol (http, grpc) and status',
  });
}

function sendError(reply: FastifyReply, request: FastifyRequest, status: number, code: string, message: string, details?: ErrorDetail[]) {
  request.errorCode = code;
  return reply
    .code(status)
    .type('application/json')
    .send(errorBody(request.id, code, message, details));
}

/** Sends an AppError from places the error handler does not reach (hooks of scopes with their own handler). */
export function sendAppError(reply: FastifyReply, request: FastifyRequest, error: AppError) {
  for (const [name, value] of Object.entries(error.headers)) reply.header(name, value);
  return sendError(reply, request, error.statusCode, error.code, error.message, error.details);
}

const STATUS_TEXT: Record<number, string> = {
  400: 'Bad Request',
  404: 'Not Found',
  408: 'Request Timeout',
  413: 'Payload Too Large',
  414: 'URI Too Long',
  431: 'Request Header Fields Too Large',
};

/**
 * A whole HTTP response as bytes, for a socket that has no request object (a malformed request,
 * headers too large or too slow) or whose request is being cut off. The connection is closed after it.
 */
export function rawErrorResponse(status: number, code: string, message: string, requestId: string = randomUUID()): string {
  const body = JSON.stringify(errorBody(requestId, code, message));
  return (
    `HTTP/1.1 ${status} ${STATUS_TEXT[status] ?? 'Error'}\r\n` +
    'content-type: application/json; charset=utf-8\r\n' +
    `content-length: ${Buffer.byteLength(body)}\r\n` +
    'connection: close\r\n\r\n' +
    body
  );
}

/** The statuses Fastify itself raises (bad JSON, body limit, content type) that keep their meaning; their codes come from the error map. */
const FASTIFY_CLIENT_STATUSES = new Set([400, 408, 413, 415]);

/**
 * Fastify's messages that may quote what the client sent (a URL, a header) get a fixed one. JSON
 * syntax messages stay: they say where the body is broken, which is what a client needs.
 */
const FIXED_MESSAGES: Record<string, string> = {
  FST_ERR_CTP_INVALID_MEDIA_TYPE: 'This endpoint does not take that content type',
  FST_ERR_CTP_BODY_TOO_LARGE: 'The body is larger than this endpoint takes',
  FST_ERR_CTP_INVALID_CONTENT_LENGTH: 'Content-Length does not match the body',
  FST_ERR_CTP_EMPTY_JSON_BODY: 'The body is empty; a JSON body is required',
  FST_ERR_BAD_URL: 'The URL is not valid',
};

/** Errors Node's HTTP parser raises on a connection, before Fastify has a request (clientError). */
const CLIENT_ERRORS: Record<string, { status: number; code: string; message: string }> = {
  HPE_HEADER_OVERFLOW: { status: 431, code: 'validation_error', message: 'The request headers are too large' },
  HPE_URI_TOO_LONG: { status: 414, code: 'validation_error', message: 'The URL is too long' },
  ERR_HTTP_REQUEST_TIMEOUT: { status: 408, code: 'request_timeout', message: 'The request did not arrive in time' },
  ERR_HTTP_HEADERS_TIMEOUT: { status: 408, code: 'request_timeout', message: 'The request headers did not arrive in time' },
};
const MALFORMED = { status: 400, code: 'validation_error', message: 'The request is not valid HTTP' };

/** Fastify's clientErrorHandler: a malformed or overlong request gets the contract's body, then the socket closes. */
export function clientErrorHandler(err: Error & { code?: string }, socket: Socket): void {
  // A client that went away (or a socket already answered) has nobody to read a reply.
  if (err.code === 'ECONNRESET' || err.code === 'EPIPE' || !socket.writable) {
    socket.destroy();
    return;
  }
  const { status, code, message } = CLIENT_ERRORS[err.code ?? ''] ?? MALFORMED;
  socket.end(rawErrorResponse(status, code, message));
}

/** The request's client is gone (its socket closed, or cut off for being too slow): nothing can be answered. */
function clientGone(request: FastifyRequest): boolean {
  // Not request.raw.destroyed: a body read to its end is destroyed too (autoDestroy).
  // inject() requests have a socket of light-my-request's that says neither: they are never gone.
  const socket = request.raw.socket as Socket | null;
  return socket != null && (socket.destroyed === true || socket.writable === false);
}

export type ErrorsPluginOptions = { telemetry?: Telemetry; warningIntervalMs?: number };

async function errorsPlugin(app: FastifyInstance, options: ErrorsPluginOptions) {
  // Under overload every call may end in the same 504 or 429: one line per interval says how many.
  const tally = new WarningTally(app.log, options.warningIntervalMs ?? 10_000);
  const redisFull = options.telemetry?.meter.createCounter('scoring_redis_oom_refusals_total', {
    description: 'Requests refused with 507 because Redis reached maxmemory',
  });
  app.addHook('onClose', async () => tally.close());
  // Counted once the answer is sent, from the code whoever answered set (this handler, auth's
  // hook, the protocol routes' own error shape): one place however the error was raised.
  app.decorateRequest('errorCode', null);
  const errors = options.telemetry && errorsCounter(options.telemetry.meter);
  if (errors) {
    app.addHook('onResponse', async (request, reply) => {
      if (request.errorCode !== null) errors.add(1, { code: request.errorCode, protocol: 'http', status: String(reply.statusCode) });
    });
  }

  app.setErrorHandler((error: FastifyError, request, reply) => {
    if (clientGone(request)) {
      // A client that hung up mid-upload (or was cut off for being too slow) is routine, not a fault.
      request.log.info({ request_id: request.id, reason: error.code ?? error.message }, 'client gone before the answer');
      reply.hijack();
      return;
    }
    if (error instanceof AppError) {
      if (error.statusCode === 504 || error.statusCode === 429) tally.count(error.code);
      // err: the log keeps the stack and the cause (a Redis fault behind an unavailable, say).
      else if (error.statusCode >= 500) request.log.warn({ err: error, code: error.code, request_id: request.id }, error.message);
      return sendAppError(reply, request, error);
    }
    if (isRedisOutOfMemory(error)) {
      redisFull?.add(1);
      tally.count('insufficient_storage');
      return sendAppError(reply, request, new InsufficientStorageError({ cause: error }));
    }
    if (hasZodFastifySchemaValidationErrors(error)) {
      const where = error.validationContext ?? 'body';
      return sendError(reply, request, 400, 'validation_error', `Invalid request ${where}`, schemaErrorDetails(error));
    }
    const status = error.statusCode ?? 500;
    const code = FASTIFY_CLIENT_STATUSES.has(status) ? codeOfStatus(status) : undefined;
    if (code) {
      const message = FIXED_MESSAGES[error.code] ?? error.message.slice(0, 200);
      return sendError(reply, request, status, code, message);
    }
    request.log.error({ err: error, request_id: request.id }, 'unhandled error');
    return sendError(reply, request, 500, 'internal_error', 'Internal server error');
  });

  app.setNotFoundHandler((request, reply) => {
    const error = new NotFoundError('No such route');
    return sendError(reply, request, error.statusCode, error.code, error.message);
  });
}

function schemaErrorDetails(error: FastifyError): ErrorDetail[] {
  const issues = (error.validation ?? []).map((v) => ({
    path: v.instancePath.split('/').filter(Boolean),
    message: v.message ?? 'invalid',
    code: v.keyword,
    keys: (v.params as { keys?: string[] }).keys,
  }));
  return issuesToDetails(issues);
}

/**
 * Fastify's frameworkErrors: routing failures that happen before any route (a URL that does not
 * decode, a path parameter past maxParamLength). A parameter too long to be any id names nothing: 404.
 */
export function frameworkErrors(error: FastifyError, request: FastifyRequest, reply: FastifyReply): void {
  if (error.code === 'FST_ERR_MAX_PARAM_LENGTH') void sendError(reply, request, 404, 'not_found', 'No such resource');
  else void sendError(reply, request, 400, 'validation_error', FIXED_MESSAGES.FST_ERR_BAD_URL!);
}

export default fp(errorsPlugin, { name: 'errors' });
