// The XGBoost conversion against XGBoost itself: Debian's python3-xgboost trains small boosters
// (test/fixtures/xgboost/train.py) and writes its own predict() for rows with NaNs, a row of
// NaN only and rows exactly on split thresholds; the converted graph, run by onnxruntime, must
// give every output within 1e-5 (relative). The same booster as .json and .ubj converts to the
// same graph. "Within 1e-5" is relative, and absolute below 1: the graph sums the same float32
// leaves as XGBoost in another order, so values that nearly cancel (a regression around 0 with
// base_score 10) differ by an ulp of the largest term, ~1e-6, which is no error relative to them. Boosters the conversion cannot serve faithfully are refused with the reason.
// Set-up installs the Debian packages when missing (scripts/ensure-python-ml.sh); without apt-get
// or root the tests are skipped, saying why.
import { after, before, describe, test } from 'node:test';
import assert from 'node:assert/strict';
import { execFile } from 'node:child_process';
import { mkdtempSync, readFileSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { promisify } from 'node:util';
import { fileURLToPath } from 'node:url';
import ort from 'onnxruntime-node';
import { XGBOOST_INPUT, XgboostRefusal, convertBooster, parseBaseScore, readBooster } from '../../src/worker/xgboost-onnx.ts';
import { PYTHON, pythonMlSkipReason } from '../helpers/python-ml.ts';

const run = promisify(execFile);
const TRAIN = fileURLToPath(new URL('../fixtures/xgboost/train.py', import.meta.url));
const TOLERANCE = 1e-5;

const skip = await pythonMlSkipReason();

type Expected = { rows: (number | null)[][]; predict: number[] | number[][]; min_leaf?: number };

describe('XGBoost boosters converted to ONNX, against xgboost.predict()', { skip }, () => {
  let dir: string;
  before(async () => {
    dir = mkdtempSync(join(tmpdir(), 'xgboost-cases-'));
    await run(PYTHON, [TRAIN, dir], { timeout: 120_000 });
  });
  after(() => rmSync(dir, { recursive: true, force: true }));

  const load = (name: string, file: string) => readBooster(file, readFileSync(join(dir, name, file)));
  const expected = (name: string) => JSON.parse(readFileSync(join(dir, name, 'expected.json'), 'utf8')) as Expected;

  async function score(onnx: Uint8Array, rows: (number | null)[][]): Promise<{ data: ArrayLike<number | bigint>; dims: readonly number[] }> {
    const session = await ort.InferenceSession.create(onnx);
    try {
      const width = rows[0]!.length;
      const x = new Float32Array(rows.length * width);
      rows.forEach((r, i) => r.forEach((v, j) => (x[i * width + j] = v === null ? Number.NaN : v)));
      const out = await session.run({ [XGBOOST_INPUT]: new ort.Tensor('float32', x, [rows.length, width]) });
      const tensor = out[session.outputNames[0]!]!;
      return { data: tensor.data as ArrayLike<number | bigint>, dims: tensor.dims };
    } finally {
      await session.release();
    }
  }

  function assertClose(actual: number, want: number, where: string) {
    const diff = Math.abs(actual - want);
    assert.ok(diff <= TOLERANCE * Math.max(Math.abs(want), 1), `${where}: ${actual} against xgboost's ${want} (diff ${diff})`);
  }

  const cases: [string, string, string][] = [
    ['binary', 'binary:logistic with base_score 0.3, NaNs in training', 'probability'],
    ['regression', 'reg:squarederror with base_score 10, pruned', 'prediction'],
    ['softprob', 'multi:softprob, 3 classes, num_parallel_tree 2', 'probabilities'],
    ['softmax', 'multi:softmax, 3 classes', 'label'],
    ['poisson', 'count:poisson', 'prediction'],
    ['positive-leaves', 'a booster whose leaves are all >= 0', 'prediction'],
    ['dart', 'dart (leaves weighted by weight_drop)', 'probability'],
  ];
  for (const [name, what, output] of cases) {
    test(`${what}: every output within 1e-5 of xgboost's, for rows with NaNs, all NaN, and on thresholds`, async () => {
      const json = convertBooster(load(name, 'xgboost.json'));
      assert.equal(json.output.name, output);
      const want = expected(name);
      const { data, dims } = await score(json.onnx, want.rows);
      assert.equal(dims[0], want.rows.length);
      want.predict.forEach((p, i) => {
        if (Array.isArray(p)) p.forEach((v, k) => assertClose(Number(data[i * p.length + k]), v, `row ${i} class ${k}`));
        else assertClose(Number(data[i]), p, `row ${i}`);
      });
      assert.ok(
        want.rows.some((r) => r.every((v) => v === null)),
        'the rows include one of NaN only',
      );
      if (name === 'positive-leaves') assert.ok(want.min_leaf! >= 0, `every leaf >= 0 (min ${want.min_leaf})`);
      if (name === 'regression') {
        const doc = JSON.parse(readFileSync(join(dir, name, 'xgboost.json'), 'utf8'));
        const deleted = doc.learner.gradient_booster.model.trees.reduce((n: number, t: any) => n + Number(t.tree_param.num_deleted), 0);
        assert.ok(deleted > 0, 'the booster has pruned nodes left in its arrays');
      }
    });
  }

  test('the same booster as .json and as .ubj converts to the same graph', () => {
    for (const [name] of cases) {
      assert.deepEqual(convertBooster(load(name, 'xgboost.ubj')).onnx, convertBooster(load(name, 'xgboost.json')).onnx, name);
    }
  });

  test('refused with the reason: categorical splits, gblinear, the legacy binary format', () => {
    assert.throws(
      () => convertBooster(load('categorical', 'xgboost.json')),
      (err: Error) => err instanceof XgboostRefusal && /categorical/.test(err.message),
    );
    assert.throws(
      () => convertBooster(load('gblinear', 'xgboost.json')),
      (err: Error) => err instanceof XgboostRefusal && /gblinear/.test(err.message),
    );
    const legacy = readFileSync(join(dir, 'legacy', 'xgboost.model'));
    assert.throws(
      () => readBooster('xgboost.json', legacy),
      (err: Error) => err instanceof XgboostRefusal && /legacy binary/.test(err.message),
    );
  });
});

test('base_score reads as XGBoost 1.7 and 2 write it, and an objective outside the list is refused', () => {
  assert.equal(parseBaseScore('5E-1'), 0.5);
  assert.equal(parseBaseScore('[5E-1]'), 0.5);
  assert.equal(parseBaseScore('1E1'), 10);
  assert.throws(() => parseBaseScore('[]'), XgboostRefusal);
  const doc = {
    learner: {
      learner_model_param: { base_score: '5E-1', num_feature: '1' },
      objective: { name: 'rank:pairwise' },
      gradient_booster: { name: 'gbtree' },
    },
  };
  assert.throws(() => convertBooster(doc), /objective rank:pairwise is not served/);
});
