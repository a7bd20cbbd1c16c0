import { test } from 'node:test';
import assert from 'node:assert/strict';
import { Batcher } from '../../src/worker/batcher.ts';

function recordingBatcher(maxBatchSize: number, maxDelayMs: number, run?: (items: number[]) => Promise<void>) {
  const batches: number[][] = [];
  const batcher = new Batcher<number>({
    maxBatchSize,
    maxDelayMs,
    sizeOf: (n) => n,
    run: async (items) => {
      batches.push(items);
      await run?.(items);
    },
  });
  return { batcher, batches };
}

test('with delay 0 a lone item runs on the next turn, without waiting for company', async () => {
  const { batcher, batches } = recordingBatcher(100, 0);
  const started = performance.now();
  await batcher.add(1);
  assert.deepEqual(batches, [[1]]);
  assert.ok(performance.now() - started < 500);
});

test('items added in one turn share one batch', async () => {
  const { batcher, batches } = recordingBatcher(100, 0);
  await Promise.all([batcher.add(1), batcher.add(2), batcher.add(3)]);
  assert.deepEqual(batches, [[1, 2, 3]]);
});

test('items that arrive while a batch runs form the next batch together', async () => {
  let release!: () => void;
  const gate = new Promise<void>((r) => (release = r));
  const { batcher, batches } = recordingBatcher(100, 0, async (items) => {
    if (items[0] === 1) await gate;
  });
  const first = batcher.add(1);
  await new Promise((r) => setImmediate(r));
  const later = [batcher.add(2), batcher.add(3), batcher.add(4)];
  release();
  await Promise.all([first, ...later]);
  assert.deepEqual(batches, [[1], [2, 3, 4]]);
});

test('a batch never exceeds maxBatchSize, counted by sizeOf', async () => {
  const { batcher, batches } = recordingBatcher(10, 0);
  await Promise.all([4, 4, 4, 4].map((n) => batcher.add(n)));
  assert.deepEqual(batches, [
    [4, 4],
    [4, 4],
  ]);
});

test('an item larger than maxBatchSize still runs, alone', async () => {
  const { batcher, batches } = recordingBatcher(10, 0);
  await Promise.all([batcher.add(25), batcher.add(1)]);
  assert.deepEqual(batches, [[25], [1]]);
});

test('with a delay, a batch that is not full waits at most that long for company', async () => {
  const { batcher, batches } = recordingBatcher(100, 30);
  const started = performance.now();
  const first = batcher.add(1);
  await new Promise((r) => setTimeout(r, 5));
  await Promise.all([first, batcher.add(2)]);
  const waited = performance.now() - started;
  assert.deepEqual(batches, [[1, 2]]);
  assert.ok(waited >= 25, `waited ${waited} ms`);
});

test('a full batch does not wait for the delay', async () => {
  const { batcher, batches } = recordingBatcher(3, 10_000);
  await Promise.all([batcher.add(1), batcher.add(1), batcher.add(1)]);
  assert.deepEqual(batches, [[1, 1, 1]]);
});

test('a failing batch rejects its own items and the next batch still runs', async () => {
  const { batcher, batches } = recordingBatcher(1, 0, async (items) => {
    if (items[0] === 1) throw new Error('boom');
  });
  const [failed, succeeded] = await Promise.allSettled([batcher.add(1), batcher.add(2)]);
  assert.equal(failed!.status, 'rejected');
  assert.equal(succeeded!.status, 'fulfilled');
  assert.deepEqual(batches, [[1], [2]]);
});
