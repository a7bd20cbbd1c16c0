import { test, describe } from 'node:test';
import assert from 'node:assert/strict';
import { createFeatureEncoder } from '../../src/worker/features.ts';
import { RecordEncodingSchema } from '../../src/worker/manifest.ts';
import { fraudModelInput } from '../../scripts/model/feature-spec.ts';
import { generateFraudRecords } from '../../scripts/model/fraud-data.ts';

const input = fraudModelInput(generateFraudRecords(42, 5000));

describe('feature encoder', () => {
  test('the training layout is a valid manifest input: 4 values then a one-hot with an unknown column', () => {
    RecordEncodingSchema.parse(input);
    assert.equal(input.width, 17);
  });

  test('encodes each record into one row in manifest order', () => {
    const encoder = createFeatureEncoder(input);
    const row = encoder.encode([
      { transaction_amount: 12.5, merchant_category: 'grocery', card_present: true, hour_of_day: 3, days_since_last_transaction: 0.25 },
    ]);
    const vocabulary = input.features.find((f) => f.encoding === 'one_hot')!;
    assert.ok(vocabulary.encoding === 'one_hot');
    const expected = new Float32Array(17);
    expected.set([12.5, 1, 3, 0.25]);
    expected[4 + vocabulary.vocabulary.indexOf('grocery')] = 1;
    assert.deepEqual(row, expected);
  });

  test('an unseen category sets the unknown column instead of failing', () => {
    const encoder = createFeatureEncoder(input);
    const row = encoder.encode([
      { transaction_amount: 1, merchant_category: 'spaceships', card_present: false, hour_of_day: 0, days_since_last_transaction: 0 },
    ]);
    assert.equal(row[16], 1);
    assert.equal(
      row.slice(4, 16).reduce((a, b) => a + b, 0),
      0,
    );
  });

  test('rows are laid out back to back', () => {
    const records = generateFraudRecords(9, 10);
    const encoder = createFeatureEncoder(input);
    const all = encoder.encode(records);
    assert.equal(all.length, 10 * encoder.width);
    assert.deepEqual(all.subarray(7 * 17, 8 * 17), encoder.encode([records[7]!]));
  });

  test('a width that disagrees with the features is refused', () => {
    assert.throws(() => createFeatureEncoder({ ...input, width: 16 }), RangeError);
  });
});
