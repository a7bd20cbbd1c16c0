// The synthetic card transactions the default model is trained on, generated exactly as
// /work/shared/fraud-data.md specifies, so that seed 42 reproduces the reference CSV byte for byte
// and the model can be rebuilt from nothing. Benchmarks and end-to-end tests import it for inputs.
import type { FraudRecord } from '../../src/shared/schemas/record.ts';

/** A generated transaction with its label (1 = fraud). */
export type FraudRow = FraudRecord & { is_fraud: 0 | 1 };

/** The rules' category table, in the rules' order (the order `pick` indexes). */
export const FRAUD_CATEGORIES = [
  { name: 'grocery', weight: 20, medianAmount: 45, pCardPresent: 0.9, risk: -0.6 },
  { name: 'restaurant', weight: 15, medianAmount: 35, pCardPresent: 0.85, risk: -0.4 },
  { name: 'gas_station', weight: 10, medianAmount: 40, pCardPresent: 0.9, risk: 0.0 },
  { name: 'retail', weight: 13, medianAmount: 60, pCardPresent: 0.8, risk: -0.2 },
  { name: 'pharmacy', weight: 5, medianAmount: 25, pCardPresent: 0.9, risk: -0.5 },
  { name: 'utilities', weight: 4, medianAmount: 90, pCardPresent: 0.05, risk: -0.8 },
  { name: 'travel', weight: 5, medianAmount: 350, pCardPresent: 0.3, risk: 0.6 },
  { name: 'entertainment', weight: 7, medianAmount: 40, pCardPresent: 0.6, risk: 0.2 },
  { name: 'online_retail', weight: 11, medianAmount: 70, pCardPresent: 0.02, risk: 0.5 },
  { name: 'electronics', weight: 6, medianAmount: 250, pCardPresent: 0.5, risk: 0.9 },
  { name: 'jewelry', weight: 2, medianAmount: 400, pCardPresent: 0.6, risk: 1.3 },
  { name: 'gambling', weight: 2, medianAmount: 100, pCardPresent: 0.3, risk: 1.5 },
] as const;

export const FRAUD_CATEGORY_NAMES: readonly string[] = FRAUD_CATEGORIES.map((c) => c.name);

const CATEGORY_WEIGHTS: readonly number[] = FRAUD_CATEGORIES.map((c) => c.weight);
const HOUR_WEIGHTS: readonly number[] = [1, 1, 1, 1, 1, 2, 3, 5, 7, 8, 8, 8, 9, 8, 8, 8, 8, 8, 8, 8, 7, 5, 4, 3];

export const FRAUD_CSV_HEADER = 'transaction_amount,merchant_category,card_present,hour_of_day,days_since_last_transaction,is_fraud';

/** The reference data set: seed, size, split and the sha256 of its CSV (fraud-data.md). */
export const REFERENCE_DATA = {
  seed: 42,
  rows: 200_000,
  trainRows: 160_000,
  holdoutRows: 40_000,
  sha256: '5e6354ff04144bb8032e8a13b01d4da95d921b2954941bfa7bf15c46e439deb0',
} as const;

/** mulberry32: a 32-bit-state PRNG returning doubles in [0, 1); the rules fix it bit for bit. */
export function mulberry32(seed: number): () => number {
  let a = seed | 0;
  return () => {
    a = (a + 0x6d2b79f5) | 0;
    let t = a;
    t = Math.imul(t ^ (t >>> 15), t | 1);
    t ^= t + Math.imul(t ^ (t >>> 7), t | 61);
    return ((t ^ (t >>> 14)) >>> 0) / 4294967296;
  };
}

function pick(weights: readonly number[], u: number): number {
  let total = 0;
  for (const w of weights) total += w;
  const target = u * total;
  let cumulative = 0;
  for (let i = 0; i < weights.length; i++) {
    cumulative += weights[i] ?? 0;
    if (target < cumulative) return i;
  }
  // Only reachable through rounding at u → 1; the rules' "first index" is then the last one.
  return weights.length - 1;
}

// Python's round(x, n) and toFixed agree on every value the reference data produces (fraud-data.md).
function round(x: number, digits: number): number {
  return Number(x.toFixed(digits));
}

/**
 * Generates `count` labelled rows from `seed`, drawing exactly 8 numbers per row in the rules' order.
 * The first `count` rows of a longer run are identical, so prefixes are comparable across sizes.
 */
export function generateFraudRows(seed: number, count: number): FraudRow[] {
  const random = mulberry32(seed);
  const rows: FraudRow[] = new Array(count);
  for (let r = 0; r < count; r++) {
    const uCat = random();
    const uCp = random();
    const uHour = random();
    const uA1 = random();
    const uA2 = random();
    const uMix = random();
    const uGap = random();
    const uFraud = random();

    const category = FRAUD_CATEGORIES[pick(CATEGORY_WEIGHTS, uCat)]!;
    const cardPresent = uCp < category.pCardPresent;
    const hour = pick(HOUR_WEIGHTS, uHour);
    const z = Math.sqrt(-2 * Math.log(1 - uA1)) * Math.cos(2 * Math.PI * uA2);
    const amount = round(Math.min(25000, Math.max(0.5, category.medianAmount * Math.exp(0.9 * z))), 2);
    const meanGapDays = uMix < 0.1 ? 20 : 2;
    const gap = round(-meanGapDays * Math.log(1 - uGap), 4);

    // The label uses the rounded amount and gap, as written to the CSV.
    const s =
      -5.6 +
      category.risk +
      (cardPresent ? -0.8 : 1.0) +
      (hour <= 5 ? 1.2 : hour >= 22 ? 0.6 : 0) +
      0.7 * Math.max(0, Math.log(amount / 100)) +
      (gap < 0.02 ? 1.3 : gap > 30 ? 0.9 : 0) +
      (!cardPresent && amount > 500 ? 0.8 : 0);
    const isFraud = uFraud < 1 / (1 + Math.exp(-s)) ? 1 : 0;

    rows[r] = {
      transaction_amount: amount,
      merchant_category: category.name,
      card_present: cardPresent,
      hour_of_day: hour,
      days_since_last_transaction: gap,
      is_fraud: isFraud,
    };
  }
  return rows;
}

/** Writes rows in the reference CSV format: header first, `\n` after every line. */
export function fraudRowsToCsv(rows: readonly FraudRow[]): string {
  const lines: string[] = new Array(rows.length + 1);
  lines[0] = FRAUD_CSV_HEADER;
  for (let i = 0; i < rows.length; i++) {
    const row = rows[i]!;
    lines[i + 1] =
      `${row.transaction_amount.toFixed(2)},${row.merchant_category},${row.card_present},` +
      `${row.hour_of_day},${row.days_since_last_transaction.toFixed(4)},${row.is_fraud}`;
  }
  return lines.join('\n') + '\n';
}

/**
 * `count` valid request records (no label) for tests and benchmarks. Amounts are never 0 after
 * rounding (the floor is 0.5), so every record passes `FraudRecordSchema`.
 */
export function generateFraudRecords(seed: number, count: number): FraudRecord[] {
  return generateFraudRows(seed, count).map(({ is_fraud: _label, ...record }) => record);
}

export const RECORD_CSV_HEADER = 'transaction_amount,merchant_category,card_present,hour_of_day,days_since_last_transaction';

/** Request records as a bulk CSV body (header row, no label), the way POST /jobs takes them. */
export function fraudRecordsToCsv(records: readonly FraudRecord[]): string {
  let text = RECORD_CSV_HEADER + '\n';
  for (const r of records) {
    text += `${r.transaction_amount},${r.merchant_category},${r.card_present},${r.hour_of_day},${r.days_since_last_transaction}\n`;
  }
  return text;
}
