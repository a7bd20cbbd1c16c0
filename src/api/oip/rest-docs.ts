// How the /v2 routes appear in /openapi.json. Their bodies follow the protocol's own
// open_inference_rest.yaml, so they are documented here as JSON schemas of that file's components
// (the routes parse and answer them themselves), with examples of the committed fraud model.
// Their errors take the protocol's shape {"error": "…"}, not the service's error body.
import data from '../openapi/examples.json' with { type: 'json' };
import type { Examples } from '../openapi/examples.ts';
import { HEADERS, REQUEST_HEADERS, type OperationDocs, type ResponseDocs } from '../openapi/operation-docs.ts';

/** The tag of the /v2 routes, declared in the document's tags. */
export const OIP_TAG = 'Open Inference Protocol';

const JSON_TYPE = 'application/json';

const TENSOR_METADATA = {
  type: 'object',
  required: ['name', 'datatype', 'shape'],
  properties: { name: { type: 'string' }, datatype: { type: 'string' }, shape: { type: 'array', items: { type: 'integer' } } },
};
const PARAMETERS = { type: 'object', additionalProperties: true };
const TENSOR = {
  type: 'object',
  required: ['name', 'shape', 'datatype', 'data'],
  properties: {
    name: { type: 'string' },
    shape: { type: 'array', items: { type: 'integer' } },
    datatype: { type: 'string' },
    parameters: PARAMETERS,
    data: { type: 'array', description: 'Flat in row-major order, or nested as the shape' },
  },
};

/** inference_error_response of open_inference_rest.yaml. */
export const OIP_ERROR_SCHEMA = { type: 'object', required: ['error'], properties: { error: { type: 'string' } } };

const SCHEMAS = {
  serverMetadata: {
    type: 'object',
    required: ['name', 'version', 'extensions'],
    properties: { name: { type: 'string' }, version: { type: 'string' }, extensions: { type: 'array', items: { type: 'string' } } },
  },
  live: { type: 'object', required: ['live'], properties: { live: { type: 'boolean' } } },
  ready: { type: 'object', required: ['ready'], properties: { ready: { type: 'boolean' } } },
  modelMetadata: {
    type: 'object',
    required: ['name', 'platform', 'inputs', 'outputs'],
    properties: {
      name: { type: 'string' },
      versions: { type: 'array', items: { type: 'string' } },
      platform: { type: 'string' },
      inputs: { type: 'array', items: TENSOR_METADATA },
      outputs: { type: 'array', items: TENSOR_METADATA },
    },
  },
  modelReady: { type: 'object', required: ['name', 'ready'], properties: { name: { type: 'string' }, ready: { type: 'boolean' } } },
  inferRequest: {
    type: 'object',
    required: ['inputs'],
    properties: {
      id: { type: 'string' },
      parameters: PARAMETERS,
      inputs: { type: 'array', items: TENSOR },
      outputs: {
        type: 'array',
        description: 'The outputs to answer with; all of them when absent',
        items: { type: 'object', required: ['name'], properties: { name: { type: 'string' }, parameters: PARAMETERS } },
      },
    },
  },
  inferResponse: {
    type: 'object',
    required: ['model_name', 'outputs'],
    properties: {
      model_name: { type: 'string' },
      model_version: { type: 'string' },
      id: { type: 'string' },
      parameters: { ...PARAMETERS, description: 'queue_ms, batch_wait_ms, inference_ms and batch_records: where the call spent its time' },
      outputs: { type: 'array', items: TENSOR },
    },
  },
};

const records = data.predictions.map((p) => p.record);
const FRAUD_INPUTS = [
  { name: 'transaction_amount', datatype: 'FP32', shape: [-1] },
  { name: 'merchant_category', datatype: 'BYTES', shape: [-1] },
  { name: 'card_present', datatype: 'BOOL', shape: [-1] },
  { name: 'hour_of_day', datatype: 'INT32', shape: [-1] },
  { name: 'days_since_last_transaction', datatype: 'FP32', shape: [-1] },
];
// JSON numbers are doubles: sent as FP64 (which the model also takes) they score exactly as /predict's.
const REQUEST_DATATYPES = {
  transaction_amount: 'FP64',
  merchant_category: 'BYTES',
  card_present: 'BOOL',
  hour_of_day: 'INT64',
  days_since_last_transaction: 'FP64',
} as const;
const FRAUD_OUTPUTS = [
  { name: 'fraud_probability', datatype: 'FP32', shape: [-1] },
  { name: 'decision', datatype: 'BYTES', shape: [-1] },
];

const EXAMPLES: Record<keyof typeof SCHEMAS, Examples> = {
  serverMetadata: { server: { value: { name: 'scoring-api', version: '1.0.0', extensions: [] } } },
  live: { live: { value: { live: true } } },
  ready: { ready: { value: { ready: true } } },
  modelMetadata: {
    fraud: {
      summary: "The fraud model: one tensor per field of /predict's record, -1 the batch dimension",
      value: { name: 'fraud', versions: ['1'], platform: 'onnx_onnxv1', inputs: FRAUD_INPUTS, outputs: FRAUD_OUTPUTS },
    },
  },
  modelReady: { fraud: { value: { name: 'fraud', ready: true } } },
  inferRequest: {
    three: {
      summary: "Three of /predict's records, one tensor per field",
      value: {
        id: 'txn-batch-1',
        inputs: Object.entries(REQUEST_DATATYPES).map(([name, datatype]) => ({
          name,
          datatype,
          shape: [records.length],
          data: records.map((r) => r[name as keyof typeof REQUEST_DATATYPES]),
        })),
        outputs: [{ name: 'fraud_probability' }, { name: 'decision' }],
      },
    },
  },
  inferResponse: {
    three: {
      summary: 'The same scores /predict gives, in input order',
      value: {
        model_name: 'fraud',
        model_version: data.model_version,
        id: 'txn-batch-1',
        parameters: { queue_ms: 0.84, batch_wait_ms: 0.02, inference_ms: 0.31, batch_records: 3 },
        outputs: [
          { name: 'fraud_probability', datatype: 'FP32', shape: [records.length], data: data.predictions.map((p) => p.fraud_probability) },
          { name: 'decision', datatype: 'BYTES', shape: [records.length], data: data.predictions.map((p) => p.decision) },
        ],
      },
    },
  },
};

const ERRORS = {
  400: 'A bad tensor or request; the message names the input or field',
  401: 'API_KEYS is set and no valid "authorization: Bearer <key>" came',
  404: 'No such model or version',
  413: 'The body is over the limit',
  429: 'The service is past its queue bound; retry after Retry-After',
  500: 'An unexpected error; its details are in the log',
  503: 'Not ready: Redis away or no worker holds the model',
  504: 'The deadline passed before the model answered',
} as const;

export type OipErrorStatus = keyof typeof ERRORS;

const ERROR_EXAMPLES: Record<OipErrorStatus, string> = {
  400: 'inputs[2] "card_present": datatype INT32 is not BOOL',
  401: 'A valid "Authorization: Bearer <key>" header is required',
  404: 'Unknown model "nosuch"',
  413: 'Request body is too large',
  429: 'The service is past its queue bound; retry later',
  500: 'Internal server error',
  503: 'The server is not ready',
  504: 'The deadline passed before the model answered',
};

const ERROR_HEADERS: Partial<Record<OipErrorStatus, ResponseDocs['headers']>> = {
  401: { 'WWW-Authenticate': HEADERS.wwwAuthenticate },
  429: { 'Retry-After': HEADERS.retryAfter },
  503: { 'Retry-After': HEADERS.retryAfter },
};

function json(schema: object, examples: Examples) {
  return { [JSON_TYPE]: { schema: schema as Record<string, unknown>, examples } };
}

function errors(statuses: OipErrorStatus[]): Record<number, ResponseDocs> {
  return Object.fromEntries(
    statuses.map((status) => [
      status,
      {
        description: ERRORS[status],
        ...(ERROR_HEADERS[status] && { headers: ERROR_HEADERS[status] }),
        content: json(OIP_ERROR_SCHEMA, { [status]: { summary: ERRORS[status], value: { error: ERROR_EXAMPLES[status] } } }),
      },
    ]),
  );
}

type Body = keyof typeof SCHEMAS;

function operationDocs(success: string, body: Body, errorStatuses: OipErrorStatus[], request?: Body): OperationDocs {
  return {
    ...(request && { requestBody: { content: json(SCHEMAS[request], EXAMPLES[request]) } }),
    responses: { 200: { description: success, content: json(SCHEMAS[body], EXAMPLES[body]) }, ...errors(errorStatuses) },
  };
}

const KEYED: OipErrorStatus[] = [401, 500];

/** The schema (operationId, tag, summary, docs) of each /v2 route, by the name of its operation. */
export function oipSchema(operationId: string, summary: string, docs: OperationDocs) {
  return { schema: { operationId, summary, tags: [OIP_TAG], docs } };
}

export const OIP_DOCS = {
  serverMetadata: operationDocs("The server's name, version and extensions", 'serverMetadata', KEYED),
  serverLive: operationDocs('The api process is up', 'live', [500]),
  serverReady: operationDocs('Redis answers and a worker holds a model', 'ready', [500, 503]),
  modelMetadata: operationDocs("The model's inputs and outputs", 'modelMetadata', [...KEYED, 404]),
  modelReady: operationDocs('A live worker holds the model', 'modelReady', [...KEYED, 404, 503]),
  infer: operationDocs(
    'The outputs, in input order, with the timings in parameters',
    'inferResponse',
    [400, 401, 404, 413, 429, 500, 503, 504],
    'inferRequest',
  ),
};

/** Inference naming no version: routed by routing.json (canary, shadow), keyed by X-Routing-Key, else the request's id. */
export const OIP_ROUTED_INFER_DOCS: OperationDocs = { ...OIP_DOCS.infer, parameters: [REQUEST_HEADERS.routingKey] };
