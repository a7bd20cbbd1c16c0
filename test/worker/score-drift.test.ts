// Score drift with the real fraud model: records drawn as its training data were score as its
// held-out rows did (PSI below 0.05 against the manifest's score_reference); the same records
// with amounts ×3 move the scores (PSI above 0.2); the window forgets old scores.
import { test, describe, before, after } from 'node:test';
import assert from 'node:assert/strict';
import { generateFraudRecords } from '../../scripts/model/fraud-data.ts';
import { loadModelVersion, type ModelVersion } from '../../src/worker/model-version.ts';
import { ScoreDrift, psi, scoreReference } from '../../src/worker/score-drift.ts';

const FRAUD = new URL('../../models/fraud/1/', import.meta.url).pathname;
const WINDOW = 10_000;

describe('score drift of fraud version 1', () => {
  let model: ModelVersion;
  before(async () => {
    model = await loadModelVersion(FRAUD, 'fraud', 1, { driftWindow: WINDOW });
  });
  after(() => model.retire());

  // A seed the build did not use: fresh records of the same distribution.
  const records = generateFraudRecords(2026, WINDOW);
  const scored = () => model.run(records);
  const shifted = () => model.run(records.map((r) => ({ ...r, transaction_amount: r.transaction_amount * 3 })));

  test('records like the training data: PSI below 0.05; amounts ×3: above 0.2; then the window forgets them', async () => {
    const drift = model.drift!;
    assert.ok(drift, 'the manifest gives a score reference');
    model.observe(await scored());
    const reference = drift.psi!;
    assert.ok(reference < 0.05, `PSI ${reference} on records like the training data`);
    model.observe(await shifted());
    const moved = drift.psi!;
    assert.ok(moved > 0.2, `PSI ${moved} with amounts ×3`);
    assert.equal(drift.scores, WINDOW);
    model.observe(await scored());
    assert.ok(drift.psi! < 0.05, `PSI ${drift.psi} once the window holds only unshifted scores again`);
    console.log(`PSI over ${WINDOW} scores: like the training data ${reference.toFixed(4)}, amounts ×3 ${moved.toFixed(4)}`);
  });

  test('equal-population bins, and PSI is 0 for the same shares and grows with the shift', () => {
    const ref = scoreReference(
      Array.from({ length: 1000 }, (_, i) => i / 1000),
      4,
    );
    assert.deepEqual(ref.fractions, [0.25, 0.25, 0.25, 0.25]);
    assert.equal(psi(ref.fractions, ref.fractions), 0);
    assert.ok(psi([0.4, 0.3, 0.2, 0.1], ref.fractions) > psi([0.3, 0.25, 0.25, 0.2], ref.fractions));
    const drift = new ScoreDrift(ref, 4);
    assert.equal(drift.psi, undefined);
    drift.observe([0.1, 0.3, 0.6, 0.9, Number.NaN]);
    assert.equal(drift.scores, 4);
    assert.ok(Math.abs(drift.psi!) < 1e-12);
  });
});
