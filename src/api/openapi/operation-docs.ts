// What an operation's zod schemas cannot say about it, declared beside the route (schema.docs):
// examples, response headers, bodies a route parses itself, more media types than JSON. The
// openapi plugin collects them by operationId and merges them into the generated document;
// error responses get one example per code and their headers here, from ERROR_CODES.
import { z } from 'zod';
import { ERROR_CODES, type ErrorCode } from '../../shared/schemas/error.ts';
import type { Examples } from './examples.ts';

export type Header = { description: string; schema: Record<string, unknown>; required?: boolean };
export type Media = { schema?: Record<string, unknown>; examples?: Examples };

export type ResponseDocs = {
  description?: string;
  headers?: Record<string, Header>;
  /** Examples of the JSON body. */
  examples?: Examples;
  /** Media types besides JSON (or JSON's schema, when the route's serializer does not apply). */
  content?: Record<string, Media>;
};

/** A request header the route reads without a zod schema (validating it would cost every call). */
export type HeaderParameter = { name: string; in: 'header'; required?: boolean; description: string; schema: Record<string, unknown> };

export type OperationDocs = {
  /** Request headers the route reads itself. */
  parameters?: HeaderParameter[];
  /** A body the route parses itself (no zod body schema), by media type. */
  requestBody?: { description?: string; content: Record<string, Media> };
  /** Examples of the zod-validated JSON body. */
  requestExamples?: Examples;
  responses?: Record<number, ResponseDocs>;
};

declare module 'fastify' {
  interface FastifySchema {
    docs?: OperationDocs;
  }
}

/** Response headers the contract promises, documented once. */
export const HEADERS = {
  location: { description: 'Where the status of the job lives: its status_url', schema: { type: 'string', example: '/jobs/Gd4ZrZ1mJr6m0Vw3xP9kqA' } },
  idempotentReplayed: {
    description: 'true when an Idempotency-Key named a job made earlier: this is that job, and the body was not read',
    schema: { type: 'string', enum: ['true'] },
  },
  serverTiming: {
    description: 'Where the milliseconds went: waiting in the queue, waiting for the batch, inside session.run',
    schema: { type: 'string', example: 'queue;dur=0.84, batch;dur=0.02, inference;dur=0.31' },
  },
  retryAfter: { description: 'Seconds after which to try again', schema: { type: 'integer', minimum: 1, example: 1 } },
  wwwAuthenticate: { description: 'The scheme to authenticate with', schema: { type: 'string', enum: ['Bearer'] } },
} satisfies Record<string, Header>;

/** Request headers the routes read themselves, documented once. */
export const REQUEST_HEADERS = {
  routingKey: {
    name: 'X-Routing-Key',
    in: 'header',
    description:
      "What routing.json's canary and shadow shares route a call naming no version by: one key always gets the same version while the file stays. Without it: a one-record call's id, else the request id.",
    schema: { type: 'string', example: 'customer-4711' },
  },
} satisfies Record<string, HeaderParameter>;

const ERROR_HEADERS: Partial<Record<number, Record<string, Header>>> = {
  401: { 'WWW-Authenticate': HEADERS.wwwAuthenticate },
  429: { 'Retry-After': HEADERS.retryAfter },
  503: { 'Retry-After': HEADERS.retryAfter },
  507: { 'Retry-After': HEADERS.retryAfter },
};

const REQUEST_ID = '0b7c6a52-8f3e-4d41-9a57-2f0d9c1e6b3a';

function errorExample(code: ErrorCode): unknown {
  const error: Record<string, unknown> = { code, message: ERROR_CODES[code].message };
  if (code === 'validation_error') {
    error.details = [
      { path: 'hour_of_day', message: 'Too big: expected number to be <=23' },
      { path: 'channel', message: 'Unknown field "channel"' },
    ];
  }
  return { error, request_id: REQUEST_ID };
}

type Operation = {
  operationId?: string;
  parameters?: unknown[];
  requestBody?: { content?: Record<string, Media> };
  responses?: Record<string, { description?: string; headers?: Record<string, Header>; content?: Record<string, Media> }>;
};

const JSON_TYPE = 'application/json';

/** The error codes an error response's schema lists, if it is one of errorResponses(). */
function errorCodesOf(media: Media | undefined): ErrorCode[] {
  const props = media?.schema?.properties as { error?: { properties?: { code?: { enum?: unknown[] } } } } | undefined;
  const codes = props?.error?.properties?.code?.enum ?? [];
  return codes.filter((c): c is ErrorCode => typeof c === 'string' && c in ERROR_CODES);
}

/** Applies one operation's docs, and the generic error examples and headers, in place. */
export function documentOperation(operation: Operation, docs: OperationDocs | undefined): void {
  if (docs?.parameters) operation.parameters = [...(operation.parameters ?? []), ...docs.parameters];
  if (docs?.requestBody) operation.requestBody = { required: true, ...docs.requestBody } as Operation['requestBody'];
  const jsonBody = operation.requestBody?.content?.[JSON_TYPE];
  if (docs?.requestExamples && jsonBody) jsonBody.examples = docs.requestExamples;

  // Responses no zod schema declares (a route that writes its own bodies) come from the docs alone.
  const responses = (operation.responses ??= {});
  for (const status of Object.keys(docs?.responses ?? {})) responses[status] ??= { description: '' };
  for (const [status, response] of Object.entries(responses)) {
    const extra = docs?.responses?.[Number(status)];
    const json = response.content?.[JSON_TYPE];
    if (extra?.description) response.description = extra.description;
    if (extra?.headers) response.headers = { ...response.headers, ...extra.headers };
    if (extra?.examples && json) json.examples = extra.examples;
    if (extra?.content) {
      response.content ??= {};
      for (const [type, media] of Object.entries(extra.content)) response.content[type] = { ...response.content[type], ...media };
    }
    const codes = errorCodesOf(json);
    if (json && codes.length > 0) {
      json.examples ??= Object.fromEntries(codes.map((code) => [code, { summary: ERROR_CODES[code].when, value: errorExample(code) }]));
      const headers = ERROR_HEADERS[Number(status)];
      if (headers) response.headers = { ...headers, ...response.headers };
    }
  }
}

/** A reference to the component of a registered zod schema (one with .meta({ id })). */
export function componentRef(schema: z.ZodType): { $ref: string } {
  const id = z.globalRegistry.get(schema)?.id;
  if (!id) throw new Error('componentRef: the schema has no id');
  return { $ref: `#/components/schemas/${id}` };
}
