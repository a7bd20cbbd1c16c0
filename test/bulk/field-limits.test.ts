// Per-field limits of the streaming parsers: a giant value, a giant or deeply nested record, or an
// overlong line or CSV record is refused with 400 as soon as it passes its limit, without being
// held whole; values at the limits of a real record still pass.
import { test } from 'node:test';
import assert from 'node:assert/strict';
import { MAX_ELEMENT_CHARS, MAX_VALUE_CHARS, parseJson } from '../../src/api/bulk/parse-json.ts';
import { MAX_LINE_CHARS, parseNdjson } from '../../src/api/bulk/parse-ndjson.ts';
import { MAX_RECORD_CHARS, parseCsv } from '../../src/api/bulk/parse-csv.ts';
import { AppError } from '../../src/shared/errors.ts';
import type { ParsedRow } from '../../src/api/bulk/parsed-row.ts';

const record = { transaction_amount: 12.5, merchant_category: 'grocery', card_present: true, hour_of_day: 3, days_since_last_transaction: 1 };

/** An endless body after `head`: a parser that buffered the value would never finish. */
async function* endless(head: string, filler: string): AsyncGenerator<Buffer> {
  yield Buffer.from(head);
  const piece = Buffer.from(filler.repeat(16_384));
  for (;;) yield piece;
}

async function* text(body: string): AsyncGenerator<Buffer> {
  yield Buffer.from(body);
}

async function refusal(rows: AsyncIterable<ParsedRow>): Promise<AppError> {
  try {
    for await (const _ of rows) void _;
  } catch (err) {
    assert.ok(err instanceof AppError, String(err));
    return err;
  }
  throw new Error('the body was accepted');
}

test('a JSON string, key or number without end is refused past MAX_VALUE_CHARS', async () => {
  for (const head of ['{"records":[{"merchant_category":"', '{"records":[{"', '{"records":[{"hour_of_day":1']) {
    const err = await refusal(parseJson(endless(head, head.endsWith('1') ? '1' : 'a')));
    assert.equal(err.statusCode, 400, head);
  }
});

test('a JSON record too large or too deeply nested is refused, naming it', async () => {
  const wide = Object.fromEntries(Array.from({ length: MAX_ELEMENT_CHARS / 4 }, (_, i) => [`k${i}`, 1]));
  const deep = `${'['.repeat(10)}1${']'.repeat(10)}`;
  for (const body of [JSON.stringify({ records: [record, wide] }), `{"records":[${JSON.stringify(record)},${deep}]}`]) {
    const err = await refusal(parseJson(text(body)));
    assert.equal(err.statusCode, 400);
    assert.equal(err.details?.[0]?.path, 'records.1');
  }
});

test('a record with values at their real limits passes', async () => {
  const long = { ...record, merchant_category: 'é'.repeat(64), id: '😀'.repeat(64) };
  const rows = [];
  for await (const row of parseJson(text(JSON.stringify({ records: [long] })))) rows.push(row);
  assert.equal(rows.length, 1);
  assert.equal(rows[0]!.ok, true);
  assert.ok(MAX_VALUE_CHARS > 128 * 6, 'an escaped 128-character id fits');
});

test('an NDJSON line and a CSV record are refused past their limits', async () => {
  const ndjson = await refusal(parseNdjson(endless('{"merchant_category":"', 'a')));
  assert.equal(ndjson.statusCode, 400);
  assert.match(ndjson.details?.[0]?.message ?? '', new RegExp(String(MAX_LINE_CHARS)));
  const header = 'transaction_amount,merchant_category,card_present,hour_of_day,days_since_last_transaction\n';
  const csv = await refusal(parseCsv(endless(`${header}1,"`, 'a')));
  assert.equal(csv.statusCode, 400);
  assert.ok(MAX_RECORD_CHARS >= 1024);
});
