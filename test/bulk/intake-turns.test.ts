// The turns uploads share between parse slices: least parsed first, and no upload passed over
// more than MAX_PASSED_OVER times in a row.
import { test } from 'node:test';
import assert from 'node:assert/strict';
import { IntakeTurns, MAX_PASSED_OVER } from '../../src/api/bulk/intake-turns.ts';

/** An upload that parses `step` rows per slice, `slices` times; logs its name at each turn. */
async function upload(turns: IntakeTurns, name: string, startRows: number, step: number, slices: number, log: string[]) {
  let rows = startRows;
  for (let i = 0; i < slices; i++) {
    await turns.next(rows);
    log.push(name);
    rows += step;
  }
}

test('a small upload beside a large one gets the turns until it has parsed as much', async () => {
  const turns = new IntakeTurns();
  const log: string[] = [];
  await Promise.all([upload(turns, 'large', 500_000, 1000, 6, log), upload(turns, 'small', 0, 1000, 3, log)]);
  // The large one is passed over at most MAX_PASSED_OVER times; the small one is done within 3 of its own.
  assert.deepEqual(log.slice(0, 3), ['small', 'small', 'small']);
  assert.equal(log.filter((n) => n === 'large').length, 6);
});

test('a steady flow of smaller uploads still leaves the large one a turn in every MAX_PASSED_OVER + 1', async () => {
  const turns = new IntakeTurns();
  const log: string[] = [];
  // Small jobs one after another, each from 0 rows: each has parsed less than the large one.
  const flow = async () => {
    for (let i = 0; i < 10; i++) await upload(turns, `small${i}`, 0, 1, 5, log);
  };
  await Promise.all([upload(turns, 'large', 1_000_000, 1000, 5, log), flow()]);
  const largeAt = log.flatMap((n, i) => (n === 'large' ? [i] : []));
  assert.equal(largeAt.length, 5);
  let previous = -1;
  for (const at of largeAt) {
    assert.ok(at - previous - 1 <= MAX_PASSED_OVER, `large waited ${at - previous - 1} turns: ${log.join(' ')}`);
    previous = at;
  }
});
