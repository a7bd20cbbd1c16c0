import { test, describe } from 'node:test';
import assert from 'node:assert/strict';
import { logLoss, rocAuc } from '../../scripts/model/metrics.ts';

describe('metrics', () => {
  test('ROC AUC counts ties as one half, as scikit-learn does', () => {
    assert.equal(rocAuc([0, 0, 1, 1], [0.1, 0.4, 0.35, 0.8]), 0.75);
    assert.equal(rocAuc([0, 1, 0, 1], [0.5, 0.5, 0.2, 0.9]), 0.875);
    assert.equal(rocAuc([1, 0], [0.3, 0.3]), 0.5);
  });

  test('ROC AUC needs both classes', () => {
    assert.throws(() => rocAuc([1, 1], [0.2, 0.4]), RangeError);
  });

  test('log loss is the mean negative log-likelihood, finite for confident misses', () => {
    assert.ok(Math.abs(logLoss([1, 0], [0.8, 0.4]) - -(Math.log(0.8) + Math.log(0.6)) / 2) < 1e-15);
    assert.ok(Number.isFinite(logLoss([1], [0])));
  });
});
