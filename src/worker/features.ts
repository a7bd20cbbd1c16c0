// The one record → tensor encoding. The trainer, the exporter's tests and the worker all encode
// through this module, driven by the manifest's feature list, so training and serving cannot drift.
import type { FraudRecord } from '../shared/schemas/record.ts';
import type { ModelInput } from './model-manifest.ts';

export interface FeatureEncoder {
  /** Columns per row. */
  readonly width: number;
  /** Row-major float32 [records.length, width], ready for an ONNX tensor. */
  encode(records: readonly FraudRecord[]): Float32Array;
  /**
   * Rows [from, to) of columnar records (a bulk chunk), in exactly the layout and float32 values
   * `encode` gives the same records, without building a record per row.
   */
  encodeColumns(columns: FeatureColumns, from: number, to: number): Float32Array;
}

/** A record's fields as one array per field; the category as codes into `categories`. */
export type FeatureColumns = {
  readonly transactionAmount: ArrayLike<number>;
  readonly hourOfDay: ArrayLike<number>;
  readonly daysSinceLastTransaction: ArrayLike<number>;
  /** 1 where the card was present. */
  readonly cardPresent: ArrayLike<number>;
  readonly categoryCodes: ArrayLike<number>;
  readonly categories: readonly string[];
};

type NumberField = 'transaction_amount' | 'hour_of_day' | 'days_since_last_transaction';

const NUMBER_COLUMNS = {
  transaction_amount: 'transactionAmount',
  hour_of_day: 'hourOfDay',
  days_since_last_transaction: 'daysSinceLastTransaction',
} as const satisfies Record<NumberField, keyof FeatureColumns>;

/**
 * Builds the encoder a manifest's `input` describes. A category outside the vocabulary sets the
 * unknown column rather than failing: the contract scores unseen categories, it never rejects them.
 * Records are assumed valid (`FraudRecordSchema` runs before anything reaches a model).
 */
export function createFeatureEncoder(input: Pick<ModelInput, 'features' | 'width'>): FeatureEncoder {
  // Compile the feature list once into column positions; encode() then does no lookups by name.
  const numbers: { field: NumberField; column: number }[] = [];
  let cardPresentColumn = -1;
  let categoryColumns = new Map<string, number>();
  let unknownCategoryColumn = -1;

  let column = 0;
  for (const feature of input.features) {
    switch (feature.encoding) {
      case 'number':
        numbers.push({ field: feature.name, column });
        column += 1;
        break;
      case 'boolean':
        cardPresentColumn = column;
        column += 1;
        break;
      case 'one_hot':
        categoryColumns = new Map(feature.vocabulary.map((value, code) => [value, column + code]));
        unknownCategoryColumn = column + feature.unknown_code;
        column += feature.vocabulary.length + 1;
        break;
    }
  }
  if (column !== input.width) {
    throw new RangeError(`features encode to ${column} columns but width is ${input.width}`);
  }

  const width = column;
  return {
    width,
    encode(records) {
      const out = new Float32Array(records.length * width);
      for (let r = 0; r < records.length; r++) {
        const record = records[r]!;
        const base = r * width;
        for (const { field, column: c } of numbers) out[base + c] = record[field];
        if (cardPresentColumn >= 0) out[base + cardPresentColumn] = record.card_present ? 1 : 0;
        if (unknownCategoryColumn >= 0) {
          out[base + (categoryColumns.get(record.merchant_category) ?? unknownCategoryColumn)] = 1;
        }
      }
      return out;
    },
    encodeColumns(columns, from, to) {
      const rows = to - from;
      const out = new Float32Array(rows * width);
      // Column by column: each source array is read in order, and no row becomes an object.
      for (const { field, column: c } of numbers) {
        const values = columns[NUMBER_COLUMNS[field]];
        for (let r = 0; r < rows; r++) out[r * width + c] = values[from + r]!;
      }
      if (cardPresentColumn >= 0) {
        const card = columns.cardPresent;
        for (let r = 0; r < rows; r++) out[r * width + cardPresentColumn] = card[from + r] === 1 ? 1 : 0;
      }
      if (unknownCategoryColumn >= 0) {
        // The chunk's dictionary is small: resolve each of its categories to a column once.
        const columnOfCode = Int32Array.from(columns.categories, (category) => categoryColumns.get(category) ?? unknownCategoryColumn);
        const codes = columns.categoryCodes;
        for (let r = 0; r < rows; r++) out[r * width + columnOfCode[codes[from + r]!]!] = 1;
      }
      return out;
    },
  };
}
