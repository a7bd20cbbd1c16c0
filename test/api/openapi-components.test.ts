// mergeIoComponents on small documents: the cases fastify-type-provider-zod's input/output
// components can come in.
import { test } from 'node:test';
import assert from 'node:assert/strict';
import { mergeIoComponents } from '../../src/api/openapi/components.ts';

const ref = (name: string) => ({ $ref: `#/components/schemas/${name}` });
const strict = { type: 'object', properties: { a: { type: 'string' } }, additionalProperties: false };
const loose = { type: 'object', properties: { a: { type: 'string' } } };

test('an identical XInput gives way to X, and references to it follow', () => {
  const out = mergeIoComponents({
    paths: { '/x': { post: { requestBody: ref('RecordInput'), responses: { 200: ref('Record') } } } },
    components: { schemas: { RecordInput: strict, Record: strict } },
  });
  assert.deepEqual(Object.keys(out.components!.schemas!), ['Record']);
  assert.deepEqual(out.paths, { '/x': { post: { requestBody: ref('Record'), responses: { 200: ref('Record') } } } });
});

test('unused components go, also the ones only an unused component refers to; nested references are kept', () => {
  const out = mergeIoComponents({
    paths: { '/x': { get: { responses: { 200: ref('Page') } } } },
    components: {
      schemas: { Page: { type: 'array', items: ref('Item') }, Item: strict, Orphan: { items: ref('OrphanItem') }, OrphanItem: strict },
    },
  });
  assert.deepEqual(Object.keys(out.components!.schemas!).sort(), ['Item', 'Page']);
});

test('an XInput used alone takes the name X; one that differs from a used X keeps both', () => {
  const alone = mergeIoComponents({
    paths: { '/x': { post: { requestBody: ref('QueryInput') } } },
    components: { schemas: { QueryInput: loose, Query: strict } },
  });
  assert.deepEqual(alone.components!.schemas, { Query: loose });
  assert.deepEqual(alone.paths, { '/x': { post: { requestBody: ref('Query') } } });

  const both = mergeIoComponents({
    paths: { '/x': { post: { requestBody: ref('QueryInput'), responses: { 200: ref('Query') } } } },
    components: { schemas: { QueryInput: loose, Query: strict } },
  });
  assert.deepEqual(both.components!.schemas, { QueryInput: loose, Query: strict });
});
