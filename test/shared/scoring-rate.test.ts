// The scoring-rate estimators behind admission (online-dispatcher.ts) and the drain gauge.
import { test } from 'node:test';
import assert from 'node:assert/strict';
import { busyScoringRate, drainSeconds, predictedWaitMs, trimSamples, windowScoringRate, type RateSample } from '../../src/shared/scoring-rate.ts';

/** Samples every `step` ms from t=0: scored and waiting given per sample. */
function samples(step: number, rows: [scored: number, waiting: number][]): RateSample[] {
  return rows.map(([scored, waiting], i) => ({ at: i * step, scored, waiting }));
}

test('busy rate: only intervals that began with work waiting count', () => {
  // 0–1 s busy, 1000 scored; 1–3 s idle (nothing waiting) while a trickle of 10 was scored.
  const s = samples(1000, [
    [0, 50],
    [1000, 0],
    [1005, 0],
    [1010, 0],
  ]);
  assert.equal(busyScoringRate(s, 3000, 10_000), 1000);
  // The same counter read as a plain window rate is diluted by the idle time.
  assert.equal(windowScoringRate(s, 3000, 10_000), 1010 / 3);
});

test('busy rate: a busy interval that scored nothing (a frozen worker) pulls it to zero', () => {
  const warm = samples(200, [
    [0, 10],
    [400, 10],
    [800, 10],
  ]);
  assert.equal(busyScoringRate(warm, 400, 10_000), 2000);
  const frozen = [...warm, ...[1, 2, 3, 4, 5, 6].map((i) => ({ at: 400 + i * 200, scored: 800, waiting: 64 }))];
  // Within a 1 s window only frozen intervals remain.
  assert.equal(busyScoringRate(frozen, 1600, 1000), 0);
  // Over a longer window the warm-up still counts: 800 records over 1.6 s busy.
  assert.equal(busyScoringRate(frozen, 1600, 10_000), 500);
});

test('busy rate: unknown, not zero, without enough busy time', () => {
  assert.equal(busyScoringRate([], 0, 1000), undefined);
  assert.equal(
    busyScoringRate(
      samples(200, [
        [0, 0],
        [0, 0],
      ]),
      200,
      1000,
    ),
    undefined,
  );
  const short = samples(200, [
    [0, 5],
    [0, 5],
  ]);
  assert.equal(busyScoringRate(short, 200, 3000, 1000), undefined, '200 ms busy is below the 1 s minimum');
  assert.equal(busyScoringRate(short, 200, 3000), 0);
});

test('busy rate: a counter that went backwards (Redis flushed) adds nothing', () => {
  assert.equal(
    busyScoringRate(
      samples(1000, [
        [5000, 1],
        [10, 1],
        [1010, 1],
      ]),
      2000,
      10_000,
    ),
    500,
  );
});

test('predicted wait: records ÷ rate; 0 when nothing waits or the rate is unknown; Infinity when nothing is scored', () => {
  assert.equal(predictedWaitMs(500, 1000), 500);
  assert.equal(predictedWaitMs(0, 0), 0);
  assert.equal(predictedWaitMs(100, undefined), 0);
  assert.equal(predictedWaitMs(1, 0), Infinity);
});

test('drain seconds: busy rate, else the last known, else one record a second', () => {
  assert.equal(drainSeconds(0, undefined, undefined), 0);
  assert.equal(drainSeconds(25, undefined, undefined), 25);
  assert.equal(drainSeconds(100, 50, 10), 2);
  assert.equal(drainSeconds(100, 0, 10), 10);
});

test('trimSamples keeps the sample that opens the window', () => {
  const s = samples(1000, [
    [0, 0],
    [1, 0],
    [2, 0],
    [3, 0],
  ]);
  trimSamples(s, 3000, 1500);
  assert.deepEqual(
    s.map((x) => x.at),
    [1000, 2000, 3000],
  );
  assert.equal(windowScoringRate(s, 3000, 1500), 1);
});
