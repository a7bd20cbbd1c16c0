// One error handler for the whole api: AppErrors, zod schema errors and Fastify's own
// errors become the contract's error body; anything else is logged and answered with a
// bare 500 that reveals nothing.
import fp from 'fastify-plugin';
import type { FastifyError, FastifyInstance, FastifyReply, FastifyRequest } from 'fastify';
import { hasZodFastifySchemaValidationErrors } from 'fastify-type-provider-zod';
import { AppError, NotFoundError, issuesToDetails, type ErrorDetail } from '../../shared/errors.ts';

function sendError(reply: FastifyReply, request: FastifyRequest, status: number, code: string, message: string, details?: ErrorDetail[]) {
  const error: { code: string; message: string; details?: ErrorDetail[] } = { code, message };
  if (details) error.details = details;
  return reply.code(status).type('application/json').send({ error, request_id: request.id });
}

/** Maps the statuses Fastify itself raises (bad JSON, body limit, content type) to contract codes. */
const FASTIFY_STATUS_CODES: Record<number, string> = {
  400: 'validation_error',
  413: 'payload_too_large',
  415: 'unsupported_media_type',
};

function schemaErrorDetails(error: FastifyError): ErrorDetail[] {
  const issues = (error.validation ?? []).map((v) => ({
    path: v.instancePath.split('/').filter(Boolean),
    message: v.message ?? 'invalid',
    code: v.keyword,
    keys: (v.params as { keys?: string[] }).keys,
  }));
  return issuesToDetails(issues);
}

async function errorsPlugin(app: FastifyInstance) {
  app.setErrorHandler((error: FastifyError, request, reply) => {
    if (error instanceof AppError) {
      if (error.statusCode >= 500) request.log.warn({ code: error.code, request_id: request.id }, error.message);
      for (const [name, value] of Object.entries(error.headers)) reply.header(name, value);
      return sendError(reply, request, error.statusCode, error.code, error.message, error.details);
    }
    if (hasZodFastifySchemaValidationErrors(error)) {
      const where = error.validationContext ?? 'body';
      return sendError(reply, request, 400, 'validation_error', `Invalid request ${where}`, schemaErrorDetails(error));
    }
    const status = error.statusCode ?? 500;
    const code = FASTIFY_STATUS_CODES[status];
    if (code) return sendError(reply, request, status, code, error.message);
    request.log.error({ err: error, request_id: request.id }, 'unhandled error');
    return sendError(reply, request, 500, 'internal_error', 'Internal server error');
  });

  app.setNotFoundHandler((request, reply) => {
    const error = new NotFoundError(`No route ${request.method} ${request.url.split('?')[0]}`);
    return sendError(reply, request, error.statusCode, error.code, error.message);
  });
}

export default fp(errorsPlugin, { name: 'errors' });
