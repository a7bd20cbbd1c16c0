// The committed artifact: its bytes match its manifest, it is what the build produces, and scored
// through the worker's loader it reaches the held-out AUC the manifest claims.
import { test, describe } from 'node:test';
import assert from 'node:assert/strict';
import { createHash } from 'node:crypto';
import { readFileSync } from 'node:fs';
import { loadModelVersion } from '../../src/worker/model-version.ts';
import { FraudCardSchema } from '../../scripts/model/fraud-card.ts';
import { buildFraudModel, serializeManifest } from '../../scripts/model/build-fraud-model.ts';
import { REFERENCE_DATA, generateFraudRecords, generateFraudRows } from '../../scripts/model/fraud-data.ts';
import { predictGbdtProbability } from '../../scripts/model/gbdt.ts';
import { rocAuc } from '../../scripts/model/metrics.ts';
import { createFeatureEncoder } from '../../src/worker/features.ts';

const MODEL_DIR = new URL('../../models/fraud/1/', import.meta.url);
const SKLEARN_AUC = 0.8977;

describe('committed fraud model', () => {
  const manifestText = readFileSync(new URL('manifest.json', MODEL_DIR), 'utf8');
  const manifest = FraudCardSchema.parse(JSON.parse(manifestText));
  const onnx = readFileSync(new URL(manifest.file, MODEL_DIR));

  test('the ONNX file is small and its sha256 is the manifest’s', () => {
    assert.ok(onnx.length < 2 * 1024 * 1024);
    assert.equal(createHash('sha256').update(onnx).digest('hex'), manifest.sha256);
    assert.equal(onnx.length, manifest.bytes);
    assert.equal(manifest.data.sha256, REFERENCE_DATA.sha256);
  });

  test('held-out rows scored through the loader reach the AUC the manifest records (≥ scikit-learn’s)', async () => {
    const holdout = generateFraudRows(REFERENCE_DATA.seed, REFERENCE_DATA.rows).slice(REFERENCE_DATA.trainRows);
    const model = await loadModelVersion(MODEL_DIR.pathname, 'fraud', 1);
    try {
      const scores = await model.probabilities(holdout);
      const auc = rocAuc(
        holdout.map((r) => r.is_fraud),
        scores,
      );
      assert.ok(auc >= SKLEARN_AUC, `held-out ROC AUC ${auc}`);
      assert.ok(manifest.metrics.roc_auc >= SKLEARN_AUC);
      // The manifest is measured with the trainer's float64 sums, the runtime sums in float32.
      assert.ok(Math.abs(auc - manifest.metrics.roc_auc) < 1e-4, `${auc} vs manifest ${manifest.metrics.roc_auc}`);
      assert.equal(manifest.metrics.rows, holdout.length);
    } finally {
      await model.retire();
    }
  });

  test('rebuilding from nothing gives the committed bytes, and the runtime matches the rebuilt trees', async () => {
    const build = buildFraudModel();
    assert.equal(createHash('sha256').update(build.onnx).digest('hex'), manifest.sha256);
    assert.equal(serializeManifest(build.manifest), manifestText);

    const records = generateFraudRecords(2024, 10_000);
    const expected = predictGbdtProbability(build.model, createFeatureEncoder(build.manifest.input).encode(records), records.length);
    const model = await loadModelVersion(MODEL_DIR.pathname, 'fraud', 1);
    try {
      const actual = await model.probabilities(records);
      let maxError = 0;
      for (let i = 0; i < records.length; i++) maxError = Math.max(maxError, Math.abs(actual[i]! - expected[i]!));
      assert.ok(maxError <= 1e-5, `max |onnx − trainer| = ${maxError}`);
    } finally {
      await model.retire();
    }
  });
});
