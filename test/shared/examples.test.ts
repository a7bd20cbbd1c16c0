// examples/ is committed for the README and the CLI; it must be what `npm run examples` writes,
// and every record in it must be one the service accepts.
import { test } from 'node:test';
import assert from 'node:assert/strict';
import { readFileSync } from 'node:fs';
import { EXAMPLES_DIR, exampleFiles } from '../../scripts/examples.ts';
import { BulkRecordSchema, FraudRecordSchema } from '../../src/shared/schemas/record.ts';

test('examples/ holds what npm run examples generates', () => {
  for (const [name, text] of Object.entries(exampleFiles())) {
    assert.equal(readFileSync(EXAMPLES_DIR + name, 'utf8'), text, `examples/${name} is stale: run npm run examples`);
  }
});

test('every example record is valid', () => {
  FraudRecordSchema.parse(JSON.parse(readFileSync(EXAMPLES_DIR + 'record.json', 'utf8')));
  const lines = readFileSync(EXAMPLES_DIR + 'records.ndjson', 'utf8')
    .trimEnd()
    .split('\n');
  for (const line of lines) BulkRecordSchema.parse(JSON.parse(line));
  assert.equal(
    readFileSync(EXAMPLES_DIR + 'records.csv', 'utf8')
      .trimEnd()
      .split('\n').length,
    lines.length + 1,
  );
});
