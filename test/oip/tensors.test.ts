import { test } from 'node:test';
import assert from 'node:assert/strict';
import type { ModelMetadata } from '../../src/api/oip/backend.ts';
import { InvalidArgumentError } from '../../src/api/oip/errors.ts';
import {
  DATATYPES,
  checkInputs,
  checkRequestedOutputs,
  contentsOf,
  jsonData,
  rawOf,
  tensorFromContents,
  tensorFromJson,
  tensorFromRaw,
  type Tensor,
  type TensorMap,
} from '../../src/api/oip/tensors.ts';
import { SAMPLES, littleEndian } from './samples.ts';

function rejects(fn: () => unknown, message: RegExp) {
  assert.throws(fn, (err: unknown) => err instanceof InvalidArgumentError && message.test(err.message));
}

for (const datatype of DATATYPES) {
  const values = SAMPLES[datatype];

  test(`${datatype}: JSON in, JSON out, flat or nested`, () => {
    const flat = tensorFromJson('t', datatype, [2, 2], values);
    assert.equal(flat.datatype, datatype);
    assert.deepEqual(flat.shape, [2, 2]);
    assert.deepEqual(jsonData(flat), values);
    const nested = tensorFromJson('t', datatype, [2, 2], [values.slice(0, 2), values.slice(2)]);
    assert.deepEqual(jsonData(nested), values);
  });

  test(`${datatype}: raw little-endian bytes both ways`, () => {
    const tensor = tensorFromJson('t', datatype, [4], values);
    const raw = rawOf(tensor);
    assert.deepEqual(raw, littleEndian(datatype, values));
    const back = tensorFromRaw('t', datatype, ['4'], raw);
    assert.deepEqual(jsonData(back), values);
    // A slice at an odd offset of a bigger buffer, as gRPC hands them over.
    const padded = Buffer.concat([Buffer.from([9]), raw]).subarray(1);
    assert.deepEqual(jsonData(tensorFromRaw('t', datatype, [4], padded)), values);
  });

  test(`${datatype}: typed InferTensorContents both ways`, () => {
    const tensor = tensorFromJson('t', datatype, [4], values);
    const contents = contentsOf(tensor);
    const fields = Object.keys(contents);
    assert.equal(fields.length, 1);
    const back = tensorFromContents('t', datatype, ['2', '2'], contents);
    assert.deepEqual(back.shape, [2, 2]);
    assert.deepEqual(jsonData(back), values);
  });

  test(`${datatype}: a data length that disagrees with the shape names the input`, () => {
    rejects(() => tensorFromJson('amount', datatype, [5], values), /input "amount": shape \[5\] holds 5 elements but the data has 4/);
    rejects(() => tensorFromRaw('amount', datatype, [5], rawOf(tensorFromJson('t', datatype, [4], values))), /input "amount"/);
    rejects(() => tensorFromContents('amount', datatype, [3], contentsOf(tensorFromJson('t', datatype, [4], values))), /input "amount"/);
  });
}

test('integers out of range, non-integers and wrong element types are refused by element', () => {
  rejects(() => tensorFromJson('x', 'UINT8', [2], [1, 256]), /input "x": element 1 \(256\) is out of range for UINT8/);
  rejects(() => tensorFromJson('x', 'INT8', [1], [-129]), /out of range for INT8/);
  rejects(() => tensorFromJson('x', 'UINT64', [1], [-1]), /out of range for UINT64/);
  rejects(() => tensorFromJson('x', 'INT32', [2], [1, 1.5]), /element 1 is not an integer/);
  rejects(() => tensorFromJson('x', 'FP32', [2], [1, 'a']), /element 1 is not a number/);
  rejects(() => tensorFromJson('x', 'BOOL', [1], [1]), /element 0 is not a boolean/);
  rejects(() => tensorFromJson('x', 'BYTES', [1], [1]), /element 0 is not a string/);
  rejects(() => tensorFromContents('x', 'INT16', [1], { int_contents: [40_000] }), /out of range for INT16/);
  // 2^63 does not fit INT64; it arrives as a decimal string from the gRPC decoder.
  rejects(() => tensorFromContents('x', 'INT64', [1], { int64_contents: ['9223372036854775808'] }), /out of range for INT64/);
});

test('64-bit integers beyond 2^53 keep every bit over gRPC', () => {
  const big = '18446744073709551615';
  const tensor = tensorFromContents('x', 'UINT64', [1], { uint64_contents: [big] });
  assert.equal((tensor.data as BigUint64Array)[0], 18446744073709551615n);
  assert.deepEqual(contentsOf(tensor), { uint64_contents: [big] });
  assert.equal(tensorFromRaw('x', 'UINT64', [1], rawOf(tensor)).data[0], 18446744073709551615n);
});

test('FP16 and BF16 are refused with a clear message; unknown datatypes too', () => {
  rejects(() => tensorFromJson('half', 'FP16', [1], [1]), /input "half": datatype FP16 is not supported; send FP32 or FP64/);
  rejects(() => tensorFromRaw('half', 'BF16', [1], Buffer.alloc(2)), /datatype BF16 is not supported/);
  rejects(() => tensorFromJson('x', 'FLOAT', [1], [1]), /input "x": unknown datatype "FLOAT"/);
});

test('bad shapes and nested data that does not follow the shape are refused', () => {
  rejects(() => tensorFromJson('x', 'FP32', [-1], [1]), /input "x": shape \[-1\] must hold non-negative integers/);
  rejects(() => tensorFromJson('x', 'FP32', '2', [1, 2]), /shape must be an array/);
  rejects(() => tensorFromJson('x', 'FP32', [2, 2], [[1, 2, 3], [4]]), /nested data does not match shape \[2,2\] at depth 1/);
  rejects(() => tensorFromJson('x', 'FP32', [2], [[1], [2]]), /nests deeper than shape/);
  rejects(() => tensorFromJson('x', 'FP32', [1], 1), /data must be an array/);
});

test('BYTES that are not UTF-8 are refused naming the input and element', () => {
  const bad = Buffer.from([0xc3, 0x28]);
  rejects(
    () => tensorFromContents('merchant', 'BYTES', [2], { bytes_contents: [Buffer.from('ok'), bad] }),
    /input "merchant": element 1 is not valid UTF-8/,
  );
  const raw = Buffer.concat([Buffer.from([2, 0, 0, 0]), bad]);
  rejects(() => tensorFromRaw('merchant', 'BYTES', [1], raw), /input "merchant": element 0 is not valid UTF-8/);
  rejects(() => tensorFromJson('merchant', 'BYTES', [1], ['\ud800']), /element 0 is not valid UTF-8/);
});

test('raw BYTES that end early or hold too many elements are refused', () => {
  rejects(() => tensorFromRaw('s', 'BYTES', [1], Buffer.from([5, 0, 0, 0, 0x61])), /element 0 is longer than the data left/);
  rejects(() => tensorFromRaw('s', 'BYTES', [1], Buffer.from([1, 0])), /end inside a length prefix/);
  rejects(
    () => tensorFromRaw('s', 'BYTES', [1], Buffer.from([1, 0, 0, 0, 0x61, 1, 0, 0, 0, 0x62])),
    /shape holds 1 elements but the raw BYTES hold 2/,
  );
  rejects(() => tensorFromRaw('s', 'INT32', [2], Buffer.alloc(7)), /takes 8 raw bytes but 7 came/);
});

test('typed contents in the field of another datatype are refused', () => {
  rejects(
    () => tensorFromContents('x', 'FP32', [1], { fp64_contents: [1] }),
    /input "x": contents use fp64_contents but datatype FP32 takes fp32_contents/,
  );
  rejects(() => tensorFromContents('x', 'FP32', [1], null), /shape \[1\] holds 1 elements but the data has 0/);
});

const model: ModelMetadata = {
  name: 'm',
  versions: ['1'],
  platform: 'onnx_onnxv1',
  inputs: [
    { name: 'amount', datatype: 'FP32', shape: [-1, 1], accepts: ['FP64'], finite: true },
    { name: 'features', datatype: 'FP32', shape: [-1, 3] },
    { name: 'category', datatype: 'BYTES', shape: [-1] },
  ],
  outputs: [
    { name: 'probability', datatype: 'FP32', shape: [-1] },
    { name: 'decision', datatype: 'BYTES', shape: [-1] },
  ],
};

function call(overrides: Record<string, Tensor | undefined> = {}, batch = 2): TensorMap {
  const tensors: Record<string, Tensor | undefined> = {
    amount: tensorFromJson('amount', 'FP64', [batch], Array(batch).fill(1.5)),
    features: tensorFromJson('features', 'FP32', [batch, 3], Array(batch * 3).fill(0)),
    category: tensorFromJson('category', 'BYTES', [batch], Array(batch).fill('travel')),
    ...overrides,
  };
  return new Map(Object.entries(tensors).filter((e): e is [string, Tensor] => e[1] !== undefined));
}

test('inputs that fit the model pass, [N] standing for [N,1]', () => {
  checkInputs(call(), model, { maxBatch: 10 });
  checkInputs(call({ amount: tensorFromJson('amount', 'FP32', [2, 1], [1, 2]) }), model, { maxBatch: 10 });
});

test('inputs are checked against the model, each error naming the input', () => {
  const limits = { maxBatch: 10 };
  rejects(
    () => checkInputs(call({ extra: tensorFromJson('extra', 'FP32', [2], [1, 2]) }), model, limits),
    /unknown input "extra"; model "m" takes amount, features, category/,
  );
  rejects(() => checkInputs(call({ category: undefined }), model, limits), /missing input "category"/);
  rejects(
    () => checkInputs(call({ amount: tensorFromJson('amount', 'INT64', [2], [1, 2]) }), model, limits),
    /input "amount" has datatype INT64; the model takes FP32 or FP64/,
  );
  rejects(
    () => checkInputs(call({ features: tensorFromJson('features', 'FP32', [2, 2], [1, 2, 3, 4]) }), model, limits),
    /input "features" has shape \[2,2\]; the model takes \[-1,3\]/,
  );
  rejects(() => checkInputs(call({}, 11), model, limits), /input "amount" holds a batch of 11; the limit is 10/);
  rejects(() => checkInputs(call({}, 0), model, limits), /input "amount" holds no records/);
  rejects(
    () => checkInputs(call({ category: tensorFromJson('category', 'BYTES', [1], ['x']) }), model, limits),
    /input "category" holds a batch of 1 but "features" one of 2/,
  );
  rejects(
    () => checkInputs(call({ amount: tensorFromJson('amount', 'FP32', [2], [1, Number.NaN]) }), model, limits),
    /input "amount": element 1 is not a finite number/,
  );
});

test("a booster's input takes NaN as a missing value, and still refuses ±Infinity", () => {
  const limits = { maxBatch: 10 };
  const booster = {
    name: 'b',
    versions: ['1'],
    platform: 'onnx_onnxv1',
    inputs: [{ name: 'input__0', datatype: 'FP32' as const, shape: [-1, 2], finite: 'nan-missing' as const }],
    outputs: [],
  };
  checkInputs(new Map([['input__0', tensorFromJson('input__0', 'FP32', [1, 2], [1, Number.NaN])]]), booster, limits);
  rejects(
    () => checkInputs(new Map([['input__0', tensorFromJson('input__0', 'FP32', [1, 2], [Number.POSITIVE_INFINITY, 1])]]), booster, limits),
    /input "input__0": element 0 is not a finite number or NaN \(a missing value\)/,
  );
});

test('requested outputs are checked by name', () => {
  assert.equal(checkRequestedOutputs([], model), undefined);
  assert.deepEqual(checkRequestedOutputs(['decision'], model), ['decision']);
  rejects(() => checkRequestedOutputs(['score'], model), /unknown output "score"; model "m" gives probability, decision/);
  rejects(() => checkRequestedOutputs(['decision', 'decision'], model), /output "decision" is requested twice/);
});
