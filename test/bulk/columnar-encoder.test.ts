// The bulk worker encodes its tensor straight from a chunk's columns. It must be bit for bit the
// tensor the record encoder (the one /predict uses) makes of the same records, on every slice; and so
// must a protocol call's field columns (encodeFields).
import { test } from 'node:test';
import assert from 'node:assert/strict';
import { readFile } from 'node:fs/promises';
import { ChunkBuilder, decodeChunk } from '../../src/shared/bulk-chunk.ts';
import type { BulkRecord } from '../../src/shared/schemas/record.ts';
import { createFeatureEncoder } from '../../src/worker/features.ts';
import { ManifestSchema } from '../../src/worker/manifest.ts';
import { generateFraudRecords, mulberry32 } from '../../scripts/model/fraud-data.ts';
import type { Column } from '../../src/shared/tensor-columns.ts';

const manifest = ManifestSchema.parse(JSON.parse(await readFile(new URL('../../models/fraud/1/manifest.json', import.meta.url), 'utf8')));
const encoder = createFeatureEncoder(manifest.input!);

/** Generated records, with what the generator never makes: unseen categories, extreme and unrounded values, ids. */
function records(seed: number, count: number): BulkRecord[] {
  const random = mulberry32(seed);
  return generateFraudRecords(seed, count).map((r, i) => {
    switch (i % 7) {
      case 0:
        return { ...r, merchant_category: `unseen-${i % 3}`, id: `tx-${i}` };
      case 1:
        // Not representable in float32: the encoders must round it the same way.
        return { ...r, transaction_amount: random() * 1e7 + 1 / 3 };
      case 2:
        return { ...r, transaction_amount: 0, days_since_last_transaction: Number.MAX_VALUE, hour_of_day: 23 };
      case 3:
        return { ...r, days_since_last_transaction: Number.MIN_VALUE, card_present: !r.card_present };
      default:
        return r;
    }
  });
}

const bits = (values: Float32Array) => new Uint32Array(values.buffer, values.byteOffset, values.length);

test('columns encode bit for bit like the records they hold, slice by slice', () => {
  const input = records(20261125, 7000);
  const chunkSize = 2500;
  const builder = new ChunkBuilder(chunkSize);
  let compared = 0;
  for (let start = 0; start < input.length; start += chunkSize) {
    builder.reset();
    const chunk = input.slice(start, start + chunkSize);
    for (const r of chunk) builder.push(r);
    const columns = decodeChunk(builder.encode());
    // Slices that start and end off any round number, a one-row slice and the whole chunk.
    for (const [from, to] of [
      [0, 1],
      [0, 2048],
      [2048, columns.length],
      [17, 1031],
      [0, columns.length],
    ] as const) {
      const end = Math.min(to, columns.length);
      if (from >= end) continue;
      const columnar = encoder.encodeColumns(columns, from, end);
      const expected = encoder.encode(chunk.slice(from, end));
      assert.equal(columnar.length, (end - from) * encoder.width);
      assert.deepEqual(bits(columnar), bits(expected), `chunk at ${start}, rows [${from}, ${end})`);
      compared += end - from;
    }
  }
  assert.ok(compared > input.length);
});

test('an empty slice encodes to nothing', () => {
  const builder = new ChunkBuilder(3);
  for (const r of records(1, 3)) builder.push(r);
  assert.equal(encoder.encodeColumns(decodeChunk(builder.encode()), 2, 2).length, 0);
});

test('a protocol call’s field columns encode bit for bit like the records they hold, in each datatype a client may send', () => {
  const input = records(20261205, 500);
  const fields = (float: 'FP32' | 'FP64', int: 'INT32' | 'INT64'): Map<string, Column> => {
    const floats = (f: (r: BulkRecord) => number) => (float === 'FP64' ? Float64Array.from(input, f) : Float32Array.from(input, f));
    const hours = int === 'INT64' ? BigInt64Array.from(input, (r) => BigInt(r.hour_of_day)) : Int32Array.from(input, (r) => r.hour_of_day);
    return new Map<string, Column>([
      ['transaction_amount', { datatype: float, width: 1, data: floats((r) => r.transaction_amount) }],
      ['merchant_category', { datatype: 'BYTES', width: 1, data: input.map((r) => r.merchant_category) }],
      ['card_present', { datatype: 'BOOL', width: 1, data: Uint8Array.from(input, (r) => (r.card_present ? 1 : 0)) }],
      ['hour_of_day', { datatype: int, width: 1, data: hours }],
      ['days_since_last_transaction', { datatype: float, width: 1, data: floats((r) => r.days_since_last_transaction) }],
    ]);
  };
  const expected = bits(encoder.encode(input));
  // FP64 columns hold the records' own values; FP32 ones are already rounded as the tensor will be.
  for (const [float, int] of [
    ['FP64', 'INT64'],
    ['FP64', 'INT32'],
    ['FP32', 'INT32'],
  ] as const) {
    assert.deepEqual(bits(encoder.encodeFields(fields(float, int), input.length)), expected, `${float}, ${int}`);
  }
});
