// The online-before-bulk gate and the time-sized bulk slices, on their own.
import { test } from 'node:test';
import assert from 'node:assert/strict';
import { OnlineFirst, SliceSizer } from '../../src/worker/online-first.ts';

test('idle() resolves at once with no online work, and only once the last held job is released', async () => {
  const gate = new OnlineFirst();
  await gate.idle();
  gate.take();
  gate.take();
  let woke = false;
  const waiting = gate.idle().then(() => (woke = true));
  gate.release();
  await new Promise((r) => setImmediate(r));
  assert.equal(woke, false, 'one job is still held');
  gate.release();
  await waiting;
  assert.equal(woke, true);
  assert.equal(gate.held, 0);
});

test('a release without a take is a bug and throws, so a hold can never go negative and open the gate early', () => {
  assert.throws(() => new OnlineFirst().release(), /without take/);
});

test('slices are sized by time: rows follow the measured ms per row, within bounds', () => {
  const sizer = new SliceSizer(3);
  assert.equal(sizer.rows(), SliceSizer.FIRST_ROWS);
  // 256 rows in 1 ms: ~0.0039 ms per row, so 3 ms is 768 rows.
  sizer.observe(256, 1);
  assert.equal(sizer.rows(), 768);
  // A model 100x slower per row: the average moves toward it slice by slice, and the slice shrinks.
  for (let i = 0; i < 30; i++) sizer.observe(sizer.rows(), sizer.rows() * 0.39);
  assert.equal(sizer.rows(), SliceSizer.MIN_ROWS);
  const fast = new SliceSizer(3);
  fast.observe(1000, 0);
  assert.equal(fast.rows(), SliceSizer.MAX_ROWS, 'a slice too fast to time gets the largest size, not a division by zero');
});
