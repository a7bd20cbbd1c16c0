// A field's value rule has two forms: the zod schema records are parsed with (and the OpenAPI
// document shows), and the plain check a protocol call's columns are held to. They must agree.
import { test } from 'node:test';
import assert from 'node:assert/strict';
import { readFileSync } from 'node:fs';
import { fieldValueCheck, recordSchemaFromFields, RecordFieldSchema, type RecordField } from '../../src/shared/record-fields.ts';

const fraud = JSON.parse(readFileSync(new URL('../../models/fraud/1/manifest.json', import.meta.url), 'utf8')).input.features as unknown[];
const fields: RecordField[] = [
  ...fraud.map((f) => RecordFieldSchema.parse(f)),
  RecordFieldSchema.parse({ name: 'score', encoding: 'number', missing: 'nan' }),
  RecordFieldSchema.parse({ name: 'count', encoding: 'number', integer: true, exclusive_minimum: -1, maximum: 10 }),
];
const VALUES: unknown[] = [
  0,
  -0,
  1,
  -1,
  0.5,
  23,
  23.5,
  24,
  10,
  11,
  1e300,
  -1e300,
  NaN,
  Infinity,
  -Infinity,
  null,
  undefined,
  true,
  false,
  '',
  'travel',
  'x'.repeat(200),
  'unheard-of',
  [],
  {},
  '1',
];

test('fieldValueCheck gives the answer of the field’s zod rule for every value tried', () => {
  const shape = recordSchemaFromFields(fields).shape as Record<string, { safeParse: (v: unknown) => { success: boolean } }>;
  for (const field of fields) {
    const check = fieldValueCheck(field);
    for (const value of VALUES) {
      const byZod = shape[field.name]!.safeParse(value).success;
      assert.equal(check(value) === undefined, byZod, `${field.name}: ${String(value)} (zod says ${byZod ? 'valid' : 'invalid'})`);
    }
  }
});
