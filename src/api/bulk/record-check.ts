// A fast path for the common case of a bulk row: a record that is plainly valid. The zod schema
// (shared/schemas/record.ts) stays the definition of a record and the one source of every error
// message: a row this check does not accept goes to zod, which accepts it or names its problems.
// Why: at a million rows per job, zod's safeParse was ~30 % of the api's intake CPU; this check
// is a handful of typeof tests. test/api/record-check.test.ts holds the two in agreement over a
// large generated corpus of valid and invalid rows.
import { BulkRecordSchema, type BulkRecord } from '../../shared/schemas/record.ts';

const FIELDS = BulkRecordSchema.shape;
const CATEGORY_MIN = FIELDS.merchant_category.minLength ?? 0;
const CATEGORY_MAX = FIELDS.merchant_category.maxLength ?? Infinity;
const HOUR_MIN = FIELDS.hour_of_day.minValue ?? -Infinity;
const HOUR_MAX = FIELDS.hour_of_day.maxValue ?? Infinity;
const ID_MIN = FIELDS.id.unwrap().minLength ?? 0;
const ID_MAX = FIELDS.id.unwrap().maxLength ?? Infinity;
/** Fields every record has; `id` is the one optional field. */
const REQUIRED_FIELDS = Object.keys(FIELDS).length - 1;

type Row = Record<string, unknown>;

/**
 * zod measures strings in code points, one or two UTF-16 units each: a string within [min, max]
 * units is within [min, max] code points once its units are at least twice the floor (or the floor
 * is one). Any other string is left to zod.
 */
function isLength(value: unknown, min: number, max: number): value is string {
  return typeof value === 'string' && value.length <= max && value.length >= min && (min <= 1 || value.length >= 2 * min);
}

/**
 * The record as zod would return it when `value` is certainly a valid bulk record; undefined when
 * it may not be (zod then decides, and words the problems).
 */
export function acceptBulkRecord(value: unknown): BulkRecord | undefined {
  if (typeof value !== 'object' || value === null || Array.isArray(value)) return undefined;
  const row = value as Row;
  const amount = row.transaction_amount;
  const category = row.merchant_category;
  const card = row.card_present;
  const hour = row.hour_of_day;
  const days = row.days_since_last_transaction;
  const id = row.id;
  if (typeof amount !== 'number' || !(amount > 0) || amount === Infinity) return undefined;
  if (!isLength(category, CATEGORY_MIN, CATEGORY_MAX)) return undefined;
  if (typeof card !== 'boolean') return undefined;
  if (typeof hour !== 'number' || !Number.isInteger(hour) || hour < HOUR_MIN || hour > HOUR_MAX) return undefined;
  if (typeof days !== 'number' || !(days >= 0) || days === Infinity) return undefined;
  const hasId = Object.hasOwn(row, 'id');
  if (hasId && !isLength(id, ID_MIN, ID_MAX)) return undefined;
  // Own keys, not `in`: the five fields read above could come from a prototype, and an unknown
  // key is an error (strict schema). With every field present, a count that matches leaves no
  // room for another key.
  if (!Object.hasOwn(row, 'transaction_amount') || !Object.hasOwn(row, 'merchant_category') || !Object.hasOwn(row, 'card_present')) return undefined;
  if (!Object.hasOwn(row, 'hour_of_day') || !Object.hasOwn(row, 'days_since_last_transaction')) return undefined;
  if (Object.keys(row).length !== REQUIRED_FIELDS + (hasId ? 1 : 0)) return undefined;
  const record: BulkRecord = {
    transaction_amount: amount,
    merchant_category: category,
    card_present: card,
    hour_of_day: hour,
    days_since_last_transaction: days,
  };
  if (hasId) record.id = id as string;
  return record;
}
