// The fraud model's input layout, decided at training time and then written into the manifest,
// from which the worker's encoder is built.
import type { RecordEncoding } from '../../src/worker/manifest.ts';
import type { FraudRecord } from '../../src/shared/schemas/record.ts';

export const FRAUD_INPUT_NAME = 'features';

/**
 * Numeric fields first, then the category one-hot. The vocabulary is what the training rows contain,
 * sorted, so it is learned from data rather than copied from the generator's table.
 */
export function fraudModelInput(trainingRecords: readonly FraudRecord[]): RecordEncoding {
  const vocabulary = [...new Set(trainingRecords.map((r) => r.merchant_category))].sort();
  return {
    name: FRAUD_INPUT_NAME,
    dtype: 'float32',
    width: 4 + vocabulary.length + 1,
    // The record as /predict's request lists it; the columns encode in the order of `features`.
    record: ['transaction_amount', 'merchant_category', 'card_present', 'hour_of_day', 'days_since_last_transaction'],
    features: [
      // The value rules are the contract's PredictRequest: the api validates records by them.
      { name: 'transaction_amount', encoding: 'number', exclusive_minimum: 0, description: 'Amount of the transaction, > 0' },
      { name: 'card_present', encoding: 'boolean' },
      { name: 'hour_of_day', encoding: 'number', integer: true, minimum: 0, maximum: 23 },
      { name: 'days_since_last_transaction', encoding: 'number', minimum: 0 },
      {
        name: 'merchant_category',
        encoding: 'one_hot',
        vocabulary,
        unknown_code: vocabulary.length,
        max_length: 64,
        description: 'Merchant category; one the model has not seen is scored as unknown, not rejected',
      },
    ],
  };
}
