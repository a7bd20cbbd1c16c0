// The compact chunk and results codecs: what goes into Redis comes back field for field.
import { test } from 'node:test';
import assert from 'node:assert/strict';
import { ChunkBuilder, decodeChunk, decodeResults, encodeResults, decisionCode, decisionOf } from '../../src/shared/bulk-chunk.ts';
import type { ChunkColumns } from '../../src/shared/bulk-chunk.ts';
import type { BulkRecord, FraudRecord } from '../../src/shared/schemas/record.ts';
import { generateFraudRecords } from '../../scripts/model/fraud-data.ts';

/** Rows [from, to) of decoded columns read back as records. */
function recordsOf(columns: ChunkColumns, from: number, to: number): FraudRecord[] {
  const records: FraudRecord[] = [];
  for (let i = from; i < to; i++) {
    records.push({
      transaction_amount: columns.transactionAmount[i]!,
      merchant_category: columns.categories[columns.categoryCodes[i]!]!,
      card_present: columns.cardPresent[i] === 1,
      hour_of_day: columns.hourOfDay[i]!,
      days_since_last_transaction: columns.daysSinceLastTransaction[i]!,
    });
  }
  return records;
}

test('a chunk of records decodes to the same records, ids included', () => {
  const records: BulkRecord[] = generateFraudRecords(7, 500).map((r, i) => (i % 3 === 0 ? { ...r, id: `tx-${i}` } : r));
  const builder = new ChunkBuilder(500);
  for (const r of records) builder.push(r);
  assert.equal(builder.full, true);
  const encoded = builder.encode();
  const columns = decodeChunk(encoded);
  assert.equal(columns.length, 500);
  assert.deepEqual(
    recordsOf(columns, 0, 500),
    records.map(({ id: _id, ...rest }) => rest),
  );
  assert.deepEqual(
    columns.ids,
    records.map((r) => r.id ?? ''),
  );
  // Far smaller than the JSON it replaces.
  assert.ok(encoded.length < JSON.stringify(records).length / 2, `${encoded.length} bytes`);
});

test('a reset builder starts a fresh chunk, and a chunk without ids carries none', () => {
  const builder = new ChunkBuilder(10);
  builder.push({ ...generateFraudRecords(1, 1)[0]!, id: 'x' });
  builder.encode();
  builder.reset();
  const records = generateFraudRecords(2, 3);
  for (const r of records) builder.push(r);
  const columns = decodeChunk(builder.encode());
  assert.equal(columns.length, 3);
  assert.equal(columns.ids, null);
  assert.deepEqual(recordsOf(columns, 1, 3), records.slice(1));
});

test('results keep the exact float32 probabilities, decisions and ids', () => {
  const probabilities = new Float32Array([0.1, 0.5, 0.99, 1e-7]);
  const decisions = new Uint8Array(['approve', 'review', 'decline', 'approve'].map((d) => decisionCode(d as never)));
  const decoded = decodeResults(encodeResults({ length: 4, probabilities, decisions, ids: ['a', '', 'c', ''] }));
  assert.deepEqual(Array.from(decoded.probabilities), Array.from(probabilities));
  assert.deepEqual(Array.from(decoded.decisions, decisionOf), ['approve', 'review', 'decline', 'approve']);
  assert.deepEqual(decoded.ids, ['a', '', 'c', '']);
});

test('a chunk of another format version is refused, not guessed at', () => {
  assert.throws(() => decodeChunk(encodeResults({ length: 0, probabilities: new Float32Array(), decisions: new Uint8Array(), ids: null })));
});
