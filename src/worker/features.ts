// The one record → tensor encoding. The trainer, the exporter's tests and the worker all encode
// through this module, driven by a manifest's record encoding, so training and serving cannot drift.
import type { RecordField } from '../shared/record-fields.ts';
import type { Column } from '../shared/tensor-columns.ts';

/** A record of a record-encoded model, valid for its fields (the api checked it against them). */
export type EncodedRecord = Readonly<Record<string, unknown>>;

export interface FeatureEncoder {
  /** Columns per row. */
  readonly width: number;
  /** Row-major float32 [records.length, width], ready for an ONNX tensor. */
  encode(records: readonly EncodedRecord[]): Float32Array;
  /**
   * Rows [from, to) of columnar records (a bulk chunk), in exactly the layout and float32 values
   * `encode` gives the same records, without building a record per row.
   */
  encodeColumns(columns: FeatureColumns, from: number, to: number): Float32Array;
  /**
   * `rows` records given as one column per field (an online protocol call's tensors, one element
   * per record), in the layout and values `encode` gives the same records.
   */
  encodeFields(columns: ReadonlyMap<string, Column>, rows: number): Float32Array;
}

/**
 * A bulk chunk's columns (bulk-chunk.ts): one array per field of the columnar record form, the
 * category as codes into `categories`. Its fields are those of the default model's records.
 */
export type FeatureColumns = {
  readonly transactionAmount: ArrayLike<number>;
  readonly hourOfDay: ArrayLike<number>;
  readonly daysSinceLastTransaction: ArrayLike<number>;
  /** 1 where the card was present. */
  readonly cardPresent: ArrayLike<number>;
  readonly categoryCodes: ArrayLike<number>;
  readonly categories: readonly string[];
};

/** Which column of a chunk holds each numeric or boolean record field. */
const CHUNK_COLUMNS: Readonly<Record<string, keyof FeatureColumns>> = {
  transaction_amount: 'transactionAmount',
  hour_of_day: 'hourOfDay',
  days_since_last_transaction: 'daysSinceLastTransaction',
  card_present: 'cardPresent',
};
/** The record field a chunk holds as category codes. */
const CHUNK_CATEGORY_FIELD = 'merchant_category';

/** Whether a bulk chunk's columns can feed this encoding: every field is one the chunk holds. */
export function encodesFromColumns(fields: readonly RecordField[]): boolean {
  // A chunk's columns cannot hold a missing value.
  if (fields.some((f) => f.encoding === 'number' && f.missing === 'nan')) return false;
  return fields.every((f) => (f.encoding === 'one_hot' ? f.name === CHUNK_CATEGORY_FIELD : CHUNK_COLUMNS[f.name] !== undefined));
}

type Scalar = { field: string; column: number };
type OneHot = { field: string; columns: Map<string, number>; unknown: number };

/**
 * Builds the encoder a manifest's record encoding describes. A category outside the vocabulary
 * sets the unknown column rather than failing: the contract scores unseen categories, it never
 * rejects them. Records are assumed valid for the fields (checked once, where they arrive).
 */
export function createFeatureEncoder(input: { features: readonly RecordField[]; width: number }): FeatureEncoder {
  // Compile the field list once into column positions; encode() then does no lookups by name.
  const numbers: Scalar[] = [];
  const missable: Scalar[] = [];
  const booleans: Scalar[] = [];
  const oneHots: OneHot[] = [];

  let column = 0;
  for (const feature of input.features) {
    switch (feature.encoding) {
      case 'number':
        (feature.missing === 'nan' ? missable : numbers).push({ field: feature.name, column });
        column += 1;
        break;
      case 'boolean':
        booleans.push({ field: feature.name, column });
        column += 1;
        break;
      case 'one_hot':
        oneHots.push({
          field: feature.name,
          columns: new Map(feature.vocabulary.map((value, code) => [value, column + code])),
          unknown: column + feature.unknown_code,
        });
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
        for (const { field, column: c } of numbers) out[base + c] = record[field] as number;
        for (const { field, column: c } of missable) out[base + c] = (record[field] as number | null | undefined) ?? NaN;
        for (const { field, column: c } of booleans) out[base + c] = record[field] ? 1 : 0;
        for (const { field, columns, unknown } of oneHots) out[base + (columns.get(record[field] as string) ?? unknown)] = 1;
      }
      return out;
    },
    encodeColumns(chunk, from, to) {
      const rows = to - from;
      const out = new Float32Array(rows * width);
      // Column by column: each source array is read in order, and no row becomes an object.
      for (const { field, column: c } of numbers) {
        const values = chunk[CHUNK_COLUMNS[field]!] as ArrayLike<number>;
        for (let r = 0; r < rows; r++) out[r * width + c] = values[from + r]!;
      }
      for (const { field, column: c } of booleans) {
        const values = chunk[CHUNK_COLUMNS[field]!] as ArrayLike<number>;
        for (let r = 0; r < rows; r++) out[r * width + c] = values[from + r] === 1 ? 1 : 0;
      }
      for (const { columns, unknown } of oneHots) {
        // The chunk's dictionary is small: resolve each of its categories to a column once.
        const columnOfCode = Int32Array.from(chunk.categories, (category) => columns.get(category) ?? unknown);
        const codes = chunk.categoryCodes;
        for (let r = 0; r < rows; r++) out[r * width + columnOfCode[codes[from + r]!]!] = 1;
      }
      return out;
    },
    encodeFields(fields, rows) {
      const out = new Float32Array(rows * width);
      const values = (field: string) => fields.get(field)!.data as ArrayLike<number | bigint | string>;
      // NaN in a float column is a missing value already; Number() also reads an int64 column.
      for (const { field, column: c } of [...numbers, ...missable]) {
        const v = values(field);
        for (let r = 0; r < rows; r++) out[r * width + c] = Number(v[r]);
      }
      for (const { field, column: c } of booleans) {
        const v = values(field);
        for (let r = 0; r < rows; r++) out[r * width + c] = v[r] ? 1 : 0;
      }
      for (const { field, columns, unknown } of oneHots) {
        const v = values(field) as ArrayLike<string>;
        for (let r = 0; r < rows; r++) out[r * width + (columns.get(v[r]!) ?? unknown)] = 1;
      }
      return out;
    },
  };
}
