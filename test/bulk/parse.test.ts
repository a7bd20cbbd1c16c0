// The streaming body parsers: records come out one at a time, problems name the row (line
// number for NDJSON and CSV, array index for JSON) and the field, and a body past its byte
// limit is refused while streaming.
import { test, describe } from 'node:test';
import assert from 'node:assert/strict';
import { parseJson } from '../../src/api/bulk/parse-json.ts';
import { parseNdjson } from '../../src/api/bulk/parse-ndjson.ts';
import { parseCsv } from '../../src/api/bulk/parse-csv.ts';
import { limitBytes, type ParsedRow } from '../../src/api/bulk/parsed-row.ts';
import { AppError } from '../../src/shared/errors.ts';

const record = { transaction_amount: 12.5, merchant_category: 'grocery', card_present: true, hour_of_day: 3, days_since_last_transaction: 1 };
const HEADER = 'transaction_amount,merchant_category,card_present,hour_of_day,days_since_last_transaction';

/** Feeds text in small pieces, so records and lines straddle chunk boundaries. */
async function* pieces(text: string, size = 7): AsyncGenerator<Buffer> {
  const bytes = Buffer.from(text);
  for (let i = 0; i < bytes.length; i += size) yield bytes.subarray(i, i + size);
}

async function collect(rows: AsyncIterable<ParsedRow>): Promise<ParsedRow[]> {
  const out: ParsedRow[] = [];
  for await (const row of rows) out.push(row);
  return out;
}

async function refusal(rows: AsyncIterable<ParsedRow>): Promise<AppError> {
  try {
    await collect(rows);
  } catch (err) {
    assert.ok(err instanceof AppError, String(err));
    return err;
  }
  assert.fail('expected the body to be refused');
}

describe('NDJSON', () => {
  test('yields each line as a record, skipping blank lines and a BOM, split anywhere', async () => {
    const text = '\ufeff' + JSON.stringify(record) + '\n\n' + JSON.stringify({ ...record, id: 'é-1' }) + '\r\n';
    const rows = await collect(parseNdjson(pieces(text, 3)));
    assert.deepEqual(rows, [
      { ok: true, record },
      { ok: true, record: { ...record, id: 'é-1' } },
    ]);
  });

  test('names the line and field of each problem', async () => {
    const text = [record, record, { ...record, hour_of_day: 24, extra: 1 }].map((r) => JSON.stringify(r)).join('\n') + '\n{oops\n';
    const rows = await collect(parseNdjson(pieces(text)));
    assert.deepEqual(
      rows.flatMap((r) => (r.ok ? [] : r.details.map((d) => d.path))),
      ['lines.3.hour_of_day', 'lines.3.extra', 'lines.4'],
    );
  });
});

describe('CSV', () => {
  test('reads cells as their field types, quoted ids included', async () => {
    const text = `${HEADER},id\n12.5,grocery,true,3,1,"a,""b"""\n12.5,grocery,0,3,1e0,\n`;
    const rows = await collect(parseCsv(pieces(text)));
    assert.deepEqual(rows, [
      { ok: true, record: { ...record, id: 'a,"b"' } },
      { ok: true, record: { ...record, card_present: false } },
    ]);
  });

  test('names the line (the header is line 1) and field of each problem', async () => {
    const text = `${HEADER}\n12.5,grocery,true,3,1\n-1,grocery,maybe,3,1\n`;
    const rows = await collect(parseCsv(pieces(text)));
    assert.deepEqual(
      rows.flatMap((r) => (r.ok ? [] : r.details.map((d) => d.path))),
      ['lines.3.transaction_amount', 'lines.3.card_present'],
    );
  });

  test('refuses a header with an unknown or missing column', async () => {
    const err = await refusal(parseCsv(pieces('transaction_amount,merchant_category,card_present,hour_of_day,colour\n1,a,true,1,red\n')));
    assert.equal(err.statusCode, 400);
    assert.deepEqual(
      err.details?.map((d) => d.path),
      ['header.colour', 'header.days_since_last_transaction'],
    );
  });

  test('refuses a row with the wrong number of cells, naming its line', async () => {
    const err = await refusal(parseCsv(pieces(`${HEADER}\n12.5,grocery,true,3,1\n1,2\n`)));
    assert.equal(err.details?.[0]?.path, 'lines.3');
  });
});

describe('JSON', () => {
  test('streams the elements of records, naming problems by index', async () => {
    const text = JSON.stringify({ records: [record, { ...record, merchant_category: '' }, 7] });
    const rows = await collect(parseJson(pieces(text)));
    assert.deepEqual(rows[0], { ok: true, record });
    assert.deepEqual(
      rows.flatMap((r) => (r.ok ? [] : r.details.map((d) => d.path))),
      ['records.1.merchant_category', 'records.2'],
    );
  });

  test('refuses other top-level fields, a missing records array and malformed JSON', async () => {
    assert.equal((await refusal(parseJson(pieces('{"records":[],"x":1}')))).details?.[0]?.path, 'x');
    assert.equal((await refusal(parseJson(pieces('{}')))).details?.[0]?.path, 'records');
    assert.equal((await refusal(parseJson(pieces('[1,2]')))).statusCode, 400);
    assert.equal((await refusal(parseJson(pieces('{"records":[{"a":')))).statusCode, 400);
  });
});

test('a body past its byte limit is refused with 413 before it is read to the end', async () => {
  const bodies = [
    { parse: parseNdjson, head: '', row: JSON.stringify(record) + '\n' },
    { parse: parseJson, head: '{"records":[', row: JSON.stringify(record) + ',' },
    { parse: parseCsv, head: HEADER + '\n', row: '12.5,grocery,true,3,1\n' },
  ];
  for (const { parse, head, row } of bodies) {
    let served = 0;
    async function* endless(): AsyncGenerator<Buffer> {
      yield Buffer.from(head);
      for (;;) {
        served++;
        yield Buffer.from(row);
      }
    }
    const err = await refusal(parse(limitBytes(endless(), 10_000)));
    assert.equal(err.statusCode, 413, parse.name);
    // Read up to the limit and a little read-ahead, not on and on.
    assert.ok(served * row.length < 20_000, `${parse.name} read ${served * row.length} bytes`);
  }
});
