// What a partial results file holds, before a download continues into it: whole lines counted,
// a torn last line cut, a CSV header not written twice, an unrelated file refused.
import { test } from 'node:test';
import assert from 'node:assert/strict';
import { mkdtempSync, readFileSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { CSV_HEADER, formatResult, ResultsFileError, resultsAlreadyWritten } from '../../src/client/results-file.ts';
import type { JobResult } from '../../src/shared/schemas/bulk-job.ts';

const dir = mkdtempSync(join(tmpdir(), 'scoring-results-file-'));
test.after(() => rmSync(dir, { recursive: true, force: true }));

const results: JobResult[] = Array.from({ length: 5 }, (_, index) => ({
  index,
  ...(index % 2 ? { id: `r,${index}` } : {}),
  fraud_probability: index / 10,
  decision: 'approve',
}));

function file(name: string, text: string): string {
  const path = join(dir, name);
  writeFileSync(path, text);
  return path;
}

test('a missing or empty file holds nothing', async () => {
  assert.deepEqual(await resultsAlreadyWritten(join(dir, 'missing.csv'), 'csv'), { results: 0, empty: true });
  assert.deepEqual(await resultsAlreadyWritten(file('empty.csv', ''), 'csv'), { results: 0, empty: true });
});

test('CSV: the header alone is no result, but is not written again', async () => {
  assert.deepEqual(await resultsAlreadyWritten(file('header.csv', CSV_HEADER + '\n'), 'csv'), { results: 0, empty: false });
});

test('a torn last line is cut and the whole lines counted, CSV and NDJSON', async () => {
  const csvText =
    CSV_HEADER +
    '\n' +
    results
      .slice(0, 3)
      .map((r) => formatResult(r, 'csv'))
      .join('');
  const csv = file('torn.csv', csvText + '3,"r,3",0.');
  assert.deepEqual(await resultsAlreadyWritten(csv, 'csv'), { results: 3, empty: false });
  assert.equal(readFileSync(csv, 'utf8'), csvText);

  const ndText = results
    .slice(0, 4)
    .map((r) => formatResult(r, 'ndjson'))
    .join('');
  const nd = file('torn.ndjson', ndText + '{"index":4,"fr');
  assert.deepEqual(await resultsAlreadyWritten(nd, 'ndjson'), { results: 4, empty: false });
  assert.equal(readFileSync(nd, 'utf8'), ndText);
});

test('a file that is not a partial download is refused, untouched', async () => {
  await assert.rejects(resultsAlreadyWritten(file('other.csv', 'a,b\n1,2\n'), 'csv'), ResultsFileError);
  const gap = results
    .filter((r) => r.index !== 1)
    .map((r) => formatResult(r, 'ndjson'))
    .join('');
  await assert.rejects(resultsAlreadyWritten(file('gap.ndjson', gap), 'ndjson'), ResultsFileError);
});

test('CSV cells with commas or quotes are quoted', () => {
  assert.equal(formatResult(results[1]!, 'csv'), '1,"r,1",0.1,approve\n');
  assert.equal(formatResult({ ...results[0]!, id: 'say "hi"' }, 'csv'), '0,"say ""hi""",0,approve\n');
});
