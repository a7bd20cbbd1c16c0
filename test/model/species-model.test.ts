// The second shipped model: rebuilt from nothing it is the committed bytes, and served through
// the repository's generic path it classifies its own held-out rows as well as the manifest says.
import { test, describe } from 'node:test';
import assert from 'node:assert/strict';
import { createHash } from 'node:crypto';
import { readFileSync } from 'node:fs';
import { loadModelVersion } from '../../src/worker/model-version.ts';
import { buildSpeciesModel } from '../../scripts/model/build-species-model.ts';
import { predictSoftmax } from '../../scripts/model/softmax.ts';
import { SPECIES } from '../../scripts/model/species-data.ts';

const DIR = new URL('../../models/species/1/', import.meta.url);

describe('committed species model', () => {
  const manifestText = readFileSync(new URL('manifest.json', DIR), 'utf8');
  const manifest = JSON.parse(manifestText) as { sha256: string; bytes: number; metrics: { accuracy: number; rows: number } };
  const onnx = readFileSync(new URL('model.onnx', DIR));
  const build = buildSpeciesModel();

  test('rebuilding from nothing gives the committed bytes', () => {
    assert.equal(createHash('sha256').update(onnx).digest('hex'), manifest.sha256);
    assert.equal(onnx.length, manifest.bytes);
    assert.deepEqual(Buffer.from(build.onnx), onnx);
    assert.equal(build.manifestText, manifestText);
  });

  test('served through the generic path, it classifies its held-out rows as the manifest records', async () => {
    const model = await loadModelVersion(DIR.pathname, 'species', 1);
    try {
      const { features, labels, rows } = build.holdout;
      const records = Array.from({ length: rows }, (_, r) => ({ measurements: Array.from(features.subarray(r * 4, r * 4 + 4)) }));
      const replies = await model.run(records);
      let correct = 0;
      let maxError = 0;
      const expected = predictSoftmax(build.model, features, rows);
      replies.forEach((reply, r) => {
        if (reply.label === SPECIES[labels[r]!]) correct++;
        const p = reply.probabilities as Record<string, number>;
        SPECIES.forEach((s, c) => (maxError = Math.max(maxError, Math.abs(p[s]! - expected[r * SPECIES.length + c]!))));
      });
      const accuracy = correct / rows;
      assert.ok(accuracy >= 0.9, `held-out accuracy ${accuracy}`);
      assert.equal(rows, manifest.metrics.rows);
      // The manifest is measured in float64, the runtime computes in float32: a row near a class
      // boundary may fall the other way.
      assert.ok(Math.abs(accuracy - manifest.metrics.accuracy) <= 2 / rows, `${accuracy} vs manifest ${manifest.metrics.accuracy}`);
      assert.ok(maxError <= 1e-5, `max |onnx − trainer| = ${maxError}`);
      assert.equal(model.displayVersion, JSON.parse(manifestText).version);
    } finally {
      await model.retire();
    }
  });
});
