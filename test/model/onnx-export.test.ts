import { test, describe, before, after } from 'node:test';
import assert from 'node:assert/strict';
import { InferenceSession, Tensor } from 'onnxruntime-node';
import { createFeatureEncoder } from '../../src/worker/features.ts';
import { fraudModelInput } from '../../scripts/model/feature-spec.ts';
import { generateFraudRecords, generateFraudRows } from '../../scripts/model/fraud-data.ts';
import { predictGbdtProbability, trainGbdt, type GbdtModel } from '../../scripts/model/gbdt.ts';
import { exportGbdtToOnnx } from '../../scripts/model/onnx-export.ts';

const EXPORT = { inputName: 'features', probabilityName: 'probabilities', labelName: 'label' };
// Small but not trivial: deep enough trees and enough rounds that every node kind and feature is used.
const TRAINER = { trees: 60, maxDepth: 4, learningRate: 0.1, minLeafSize: 20, maxBins: 64, l2: 1 };

describe('ONNX export', () => {
  const train = generateFraudRows(11, 40_000);
  const input = fraudModelInput(train);
  const encoder = createFeatureEncoder(input);
  const features = encoder.encode(train);
  const labels = Uint8Array.from(train, (r) => r.is_fraud);
  let model: GbdtModel;
  let onnx: Uint8Array;
  let session: InferenceSession;

  before(async () => {
    model = trainGbdt(features, labels, encoder.width, TRAINER);
    onnx = exportGbdtToOnnx(model, EXPORT);
    session = await InferenceSession.create(onnx, { intraOpNumThreads: 1 });
  });
  after(() => session.release());

  test('onnxruntime gives the trainer’s probabilities within 1e-5 on 20,000 unseen rows', async () => {
    const records = generateFraudRecords(12345, 20_000);
    // Some categories the model never saw, to cover the unknown column too.
    for (let i = 0; i < records.length; i += 97) records[i] = { ...records[i]!, merchant_category: `new-${i % 5}` };
    const x = encoder.encode(records);
    const expected = predictGbdtProbability(model, x, records.length);
    const out = await session.run({ features: new Tensor('float32', x, [records.length, encoder.width]) });
    const probabilities = out.probabilities!;
    assert.deepEqual(probabilities.dims, [records.length, 2]);
    const data = probabilities.data as Float32Array;
    let maxError = 0;
    for (let i = 0; i < records.length; i++) {
      maxError = Math.max(maxError, Math.abs(data[2 * i + 1]! - expected[i]!), Math.abs(data[2 * i]! - (1 - expected[i]!)));
    }
    assert.ok(maxError <= 1e-5, `max |onnx − trainer| = ${maxError}`);
    const spread = Math.max(...expected) - Math.min(...expected);
    assert.ok(spread > 0.1, 'the model separates rows, so the comparison is not between constants');
  });

  test('the graph has one float32 input [N, width] and a float32 probability tensor (no ZipMap)', () => {
    assert.deepEqual(session.inputNames, ['features']);
    assert.deepEqual(session.outputNames, ['label', 'probabilities']);
    const output = session.outputMetadata.find((m) => m.name === 'probabilities')!;
    assert.ok(output.isTensor && output.type === 'float32');
    assert.deepEqual(output.shape, ['N', 2]);
  });

  test('training and exporting again gives the same bytes', () => {
    const again = exportGbdtToOnnx(trainGbdt(features, labels, encoder.width, TRAINER), EXPORT);
    assert.deepEqual(Buffer.from(again), Buffer.from(onnx));
  });
});
