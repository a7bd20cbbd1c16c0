// The fast row check of bulk intake against the zod schema it stands in for, over a seeded corpus
// of generated records, each also mutated field by field into boundary values, wrong types,
// missing and unknown keys. Whatever the fast check accepts, zod accepts as the same record; every
// generated record is taken by the fast path (so it is not a path never taken); and a
// row's outcome (record, or error details) through validateRecord is zod's, exactly.
import { test } from 'node:test';
import assert from 'node:assert/strict';
import { acceptBulkRecord } from '../../src/api/bulk/record-check.ts';
import { validateRecord } from '../../src/api/bulk/parsed-row.ts';
import { BulkRecordSchema } from '../../src/shared/schemas/record.ts';
import { issuesToDetails } from '../../src/shared/errors.ts';
import { generateFraudRecords } from '../../scripts/model/fraud-data.ts';
import { prng } from '../helpers/fuzz-bodies.ts';

const FIELDS = ['transaction_amount', 'merchant_category', 'card_present', 'hour_of_day', 'days_since_last_transaction', 'id'];
const ODD_VALUES: unknown[] = [
  0,
  -0,
  -1,
  1,
  5e-324,
  -5e-324,
  0.5,
  22.9999,
  23,
  24,
  23.0000001,
  -0.5,
  1e308,
  1.7976931348623157e308,
  Infinity,
  -Infinity,
  NaN,
  2 ** 53,
  '',
  'a',
  '1',
  'x'.repeat(63),
  'x'.repeat(64),
  'x'.repeat(65),
  'x'.repeat(127),
  'x'.repeat(128),
  'x'.repeat(129),
  '😀'.repeat(32),
  '😀'.repeat(33),
  true,
  false,
  null,
  [],
  [1],
  {},
  { a: 1 },
];

/** Rows, and among them the generated records as a client sends them (the path to be fast). */
function corpus(seed: number, size: number): { rows: unknown[]; plain: Set<unknown> } {
  const plain = new Set<unknown>();
  const { next: rng, pick } = prng(seed);
  const out: unknown[] = [null, 1, 'a', true, [], [{}], {}];
  for (const record of generateFraudRecords(seed, size)) {
    const base: Record<string, unknown> = { ...record };
    if (rng() < 0.5) base.id = `r-${Math.floor(rng() * 1e9)}`;
    out.push(base);
    plain.add(base);
    const mutated = { ...base };
    switch (Math.floor(rng() * 5)) {
      case 0:
        mutated[pick(FIELDS)] = pick(ODD_VALUES);
        break;
      case 1:
        delete mutated[pick(FIELDS)];
        break;
      case 2:
        mutated[pick(['extra', 'ID', 'constructor', 'toString'])] = pick(ODD_VALUES);
        break;
      case 3:
        for (const field of FIELDS) if (rng() < 0.3) mutated[field] = pick(ODD_VALUES);
        break;
      case 4:
        // Through JSON, so a "__proto__" key is an own key, as JSON.parse makes it in a body.
        out.push(JSON.parse(JSON.stringify(mutated).replace(/^\{/, '{"__proto__":{"id":"x"},')));
        break;
    }
    out.push(mutated);
  }
  return { rows: out, plain };
}

test('the fast row check agrees with the zod schema on 40,000 generated rows, valid and not', () => {
  let fast = 0;
  let valid = 0;
  const { rows, plain } = corpus(20261125, 20_000);
  for (const value of rows) {
    const parsed = BulkRecordSchema.safeParse(value);
    const accepted = acceptBulkRecord(value);
    if (accepted) {
      fast++;
      assert.ok(parsed.success, `fast path accepted what zod refuses: ${JSON.stringify(value)}`);
      assert.deepStrictEqual(accepted, parsed.data);
    }
    if (parsed.success) valid++;
    if (plain.has(value)) assert.ok(accepted, `the fast path does not take a generated record: ${JSON.stringify(value)}`);
    const row = validateRecord(value, ['lines', 7]);
    assert.deepStrictEqual(
      row,
      parsed.success ? { ok: true, record: parsed.data } : { ok: false, details: issuesToDetails(parsed.error.issues, ['lines', 7]) },
    );
  }
  // The corpus holds valid and invalid rows in numbers, or the agreement says little; a valid
  // row the fast path leaves to zod is a mutated one (e.g. a string long in units, short in code points).
  assert.ok(fast >= 20_000 && valid - fast < 1000 && rows.length - valid > 5000, `rows ${rows.length}, valid ${valid}, fast ${fast}`);
});
