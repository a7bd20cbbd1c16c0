// The OpenAPI document and its UI, generated from the same zod schemas that validate; what zod
// cannot say (examples, headers, bodies parsed by the route itself) comes from each route's
// schema.docs (../openapi/operation-docs.ts). /docs and /openapi.json hold no secrets: they are
// open without a key unless DOCS_PUBLIC=false.
import fp from 'fastify-plugin';
import swagger from '@fastify/swagger';
import swaggerUi from '@fastify/swagger-ui';
import type { FastifyInstance } from 'fastify';
import { jsonSchemaTransform, jsonSchemaTransformObject } from 'fastify-type-provider-zod';
import { mergeIoComponents } from '../openapi/components.ts';
import { documentOperation, type OperationDocs } from '../openapi/operation-docs.ts';
import { downloadUrlPlugin, ndjsonExamplesPlugin } from '../openapi/swagger-ui-plugins.ts';

export type OpenapiOptions = { docsPublic: boolean };

const TAGS = [
  { name: 'online', description: 'Score records now: the call waits for a worker and gets the result' },
  { name: 'models', description: 'Any model of the repository by name and version: what it takes, and scoring with it' },
  { name: 'bulk', description: 'Bulk jobs: submit many records as JSON, NDJSON or CSV, follow the job, fetch its results' },
  { name: 'health', description: 'Liveness and readiness for an orchestrator; open without a key' },
];

const METHODS = ['get', 'put', 'post', 'delete', 'patch'] as const;

type Doc = { paths?: Record<string, Partial<Record<(typeof METHODS)[number], { operationId?: string }>>> };

/** Merges the docs of each operation into the generated document, in place. */
function documentOperations(document: Doc, docs: ReadonlyMap<string, OperationDocs>): void {
  for (const item of Object.values(document.paths ?? {})) {
    for (const method of METHODS) {
      const operation = item[method];
      if (operation) documentOperation(operation, operation.operationId ? docs.get(operation.operationId) : undefined);
    }
  }
}

async function openapiPlugin(app: FastifyInstance, { docsPublic }: OpenapiOptions) {
  const docs = new Map<string, OperationDocs>();
  await app.register(swagger, {
    openapi: {
      openapi: '3.1.0',
      info: {
        title: 'Scoring service',
        description:
          'Online and bulk scoring of the fraud model through BullMQ workers. Every error is ' +
          '`{"error": {"code", "message", "details"?}, "request_id"}`; each operation lists the codes it can answer with.',
        version: '1.0.0',
      },
      servers: [{ url: '/', description: 'The api that serves this document' }],
      tags: TAGS,
      components: {
        securitySchemes: { bearer: { type: 'http', scheme: 'bearer', description: 'One of API_KEYS; not needed when API_KEYS is empty' } },
      },
      security: [{ bearer: [] }],
    },
    transform: (input) => {
      if (!input.schema) return jsonSchemaTransform(input);
      const { docs: operationDocs, ...schema } = input.schema;
      if (operationDocs && schema.operationId) docs.set(schema.operationId, operationDocs);
      // Open routes (health, readiness) need no key: the document says so, and the UI sends none.
      if (input.route.config?.public) schema.security = [];
      return jsonSchemaTransform({ ...input, schema });
    },
    transformObject: (input) => {
      // Docs first: the components they refer to count as used when unused ones are dropped.
      const document = jsonSchemaTransformObject(input) as Doc & Parameters<typeof mergeIoComponents>[0];
      documentOperations(document, docs);
      return mergeIoComponents(document) as ReturnType<typeof jsonSchemaTransformObject>;
    },
  });

  await app.register(async (scope) => {
    if (docsPublic) {
      scope.addHook('onRoute', (route) => {
        route.config = { ...route.config, public: true };
      });
    }
    await scope.register(swaggerUi, {
      routePrefix: '/docs',
      uiConfig: { docExpansion: 'list', displayOperationId: true, plugins: [downloadUrlPlugin, ndjsonExamplesPlugin] },
    });
    scope.get('/openapi.json', { schema: { hide: true } }, async () => app.swagger());
  });
}

export default fp(openapiPlugin, { name: 'openapi' });
