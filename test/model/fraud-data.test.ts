import { test, describe } from 'node:test';
import assert from 'node:assert/strict';
import { createHash } from 'node:crypto';
import { FraudRecordSchema } from '../../src/shared/schemas/record.ts';
import { REFERENCE_DATA, fraudRowsToCsv, generateFraudRecords, generateFraudRows, mulberry32 } from '../../scripts/model/fraud-data.ts';

describe('fraud data generator', () => {
  test('mulberry32 with seed 42 starts with the values fraud-data.md lists', () => {
    const random = mulberry32(42);
    assert.deepEqual([random(), random(), random()], [0.6011037519201636, 0.44829055899754167, 0.8524657934904099]);
  });

  test('seed 42 writes the reference CSV byte for byte', () => {
    const rows = generateFraudRows(REFERENCE_DATA.seed, REFERENCE_DATA.rows);
    const csv = fraudRowsToCsv(rows);
    assert.equal(createHash('sha256').update(csv).digest('hex'), REFERENCE_DATA.sha256);
    assert.equal(
      csv.slice(0, csv.indexOf('\n', csv.indexOf('\n') + 1) + 1),
      'transaction_amount,merchant_category,card_present,hour_of_day,days_since_last_transaction,is_fraud\n' + '45.99,pharmacy,true,19,0.6383,0\n',
    );
    assert.equal(rows.filter((r) => r.is_fraud === 1).length, 2885);
  });

  test('a shorter run is a prefix of a longer one', () => {
    assert.deepEqual(generateFraudRows(7, 100), generateFraudRows(7, 1000).slice(0, 100));
  });

  test('generated records are valid requests without the label', () => {
    const records = generateFraudRecords(3, 2000);
    assert.equal(records.length, 2000);
    for (const record of records) {
      assert.ok(!('is_fraud' in record));
      FraudRecordSchema.parse(record);
    }
  });
});
