// The fraud model's input layout, decided at training time and then written into the manifest,
// from which the worker's encoder is built.
import type { ModelInput } from '../../src/worker/model-manifest.ts';
import type { FraudRecord } from '../../src/shared/schemas/record.ts';

export const FRAUD_INPUT_NAME = 'features';

/**
 * Numeric fields first, then the category one-hot. The vocabulary is what the training rows contain,
 * sorted, so it is learned from data rather than copied from the generator's table.
 */
export function fraudModelInput(trainingRecords: readonly FraudRecord[]): ModelInput {
  const vocabulary = [...new Set(trainingRecords.map((r) => r.merchant_category))].sort();
  return {
    name: FRAUD_INPUT_NAME,
    dtype: 'float32',
    width: 4 + vocabulary.length + 1,
    features: [
      { name: 'transaction_amount', encoding: 'number' },
      { name: 'card_present', encoding: 'boolean' },
      { name: 'hour_of_day', encoding: 'number' },
      { name: 'days_since_last_transaction', encoding: 'number' },
      { name: 'merchant_category', encoding: 'one_hot', vocabulary, unknown_code: vocabulary.length },
    ],
  };
}
