// The contract's error body, for OpenAPI; errors.ts builds it. Each operation documents the codes
// it can answer with, grouped by status, as an enum: a client can switch on them.
import { z } from 'zod';

const ErrorDetailSchema = z
  .object({ path: z.string().describe('where, e.g. records.17.hour_of_day or lines.3.extra'), message: z.string() })
  .meta({ id: 'ErrorDetail' });

/** Every error code of the contract: its status, when it is answered, and a message as sent. */
export const ERROR_CODES = {
  validation_error: {
    status: 400,
    when: 'bad JSON, a bad or unknown field, a wrong count; details name each problem by its path',
    message: 'Invalid request body',
  },
  unauthorized: {
    status: 401,
    when: 'API_KEYS is set and the request has no valid Authorization: Bearer key',
    message: 'A valid "Authorization: Bearer <key>" header is required',
  },
  forbidden: {
    status: 403,
    when: 'the key is valid but does not open this route (the admin board takes ADMIN_API_KEYS only)',
    message: 'This key does not open the admin board',
  },
  not_found: { status: 404, when: 'an unknown or expired job, or a job of another key', message: 'No job 3q2n1mK9WJ0f6xq8r4TQ1A' },
  model_not_found: { status: 404, when: 'an unknown model name, version or alias', message: 'No model "fraud" version 7' },
  request_timeout: {
    status: 408,
    when: 'the request (headers or body) did not arrive within its timeout; the connection is closed',
    message: 'The request body did not arrive within 60000 ms',
  },
  not_ready: {
    status: 409,
    when: 'results asked for before the job has completed',
    message: 'Job 3q2n1mK9WJ0f6xq8r4TQ1A is running; results exist once it has completed',
  },
  payload_too_large: { status: 413, when: 'the body is over the limit', message: 'The body is larger than 1048576 bytes' },
  unsupported_media_type: {
    status: 415,
    when: 'a content type the operation does not take',
    message: 'POST /jobs takes application/json, application/x-ndjson, application/ndjson, text/csv',
  },
  overloaded: {
    status: 429,
    when: 'the queue is past its bound; Retry-After says when to come back',
    message: 'The service is past its queue bound; retry later',
  },
  quota_exceeded: {
    status: 429,
    when: 'the API key already has TENANT_MAX_QUEUED_RECORDS records waiting; Retry-After says when to come back; nothing was staged',
    message: 'This key has 1200000 records waiting, past its quota of 1000000 (TENANT_MAX_QUEUED_RECORDS)',
  },
  model_error: {
    status: 500,
    when: 'the model failed on the records of the call',
    message: 'model fraud-gbdt-1.0.0+f8385e29 failed to score the batch',
  },
  internal_error: { status: 500, when: 'a fault of the service; the log has the request_id', message: 'Internal server error' },
  unavailable: { status: 503, when: 'Redis does not answer; answered at once', message: 'Redis does not answer' },
  model_unavailable: {
    status: 503,
    when: 'the model exists but no live worker holds it; answered at once',
    message: 'Model "fraud" version 1 is not loaded by any live worker',
  },
  insufficient_storage: {
    status: 507,
    when: 'Redis is out of memory: new jobs are refused until jobs finish or expire; Retry-After says when to try again',
    message: 'Redis is out of memory; retry once jobs have finished or expired',
  },
  timeout: {
    status: 504,
    when: 'no worker answered within the timeout (?timeout_ms=, PREDICT_TIMEOUT_MS)',
    message: 'No worker answered within 2000 ms',
  },
} as const satisfies Record<string, { status: number; when: string; message: string }>;

export type ErrorCode = keyof typeof ERROR_CODES;

function errorBody<const C extends readonly [ErrorCode, ...ErrorCode[]]>(codes: C) {
  return z
    .object({
      error: z.object({
        // An enum in the document only: the serializer must never turn an error whose code the
        // list missed into a 500, so at run time any code passes.
        code: z.string().meta({ enum: [...codes] }),
        message: z.string().describe('for a person; the code is for programs'),
        details: z.array(ErrorDetailSchema).optional().describe('validation_error: each problem'),
      }),
      request_id: z.string().describe('names the request in the service log (X-Request-Id)'),
    })
    .describe(codes.map((code) => `\`${code}\`: ${ERROR_CODES[code].when}`).join('; '));
}

/** The contract's error body with any code, for routes that do not list theirs. */
export const ErrorBodySchema = z
  .object({
    error: z.object({
      code: z.string(),
      message: z.string(),
      details: z.array(ErrorDetailSchema).optional(),
    }),
    request_id: z.string(),
  })
  .meta({ id: 'Error' });

/** The error responses of an operation, by status, each with the codes it can carry. */
export function errorResponses(...codes: ErrorCode[]): Record<number, ReturnType<typeof errorBody>> {
  const byStatus = new Map<number, ErrorCode[]>();
  for (const code of codes) {
    const { status } = ERROR_CODES[code];
    byStatus.set(status, [...(byStatus.get(status) ?? []), code]);
  }
  return Object.fromEntries([...byStatus].map(([status, list]) => [status, errorBody(list as [ErrorCode, ...ErrorCode[]])]));
}
