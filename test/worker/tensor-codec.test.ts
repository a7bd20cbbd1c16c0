// The generic tensor path on a real session: records → tensors of every element type the service
// takes → a graph that returns each input unchanged (and a per-record sum) → JSON per record.
import { test, describe, before, after } from 'node:test';
import assert from 'node:assert/strict';
import { InferenceSession, Tensor } from 'onnxruntime-node';
import { recordSchemaFromSignature, type SignatureRecord } from '../../src/shared/model-signature.ts';
import { readSignature } from '../../src/worker/model-signature.ts';
import { decodeOutputs, encodeParts } from '../../src/worker/tensor-codec.ts';
import { allTypesGraph } from '../helpers/onnx-graphs.ts';

describe('generic tensor path', () => {
  let session: InferenceSession;
  before(async () => {
    session = await InferenceSession.create(allTypesGraph());
  });
  after(() => session.release());

  // Values chosen to break a lossy or misaligned path: a float64 that float32 would round, int64 beyond int32, negative int32, non-ASCII strings.
  const records: SignatureRecord[] = [
    { f32: [0.5, -1.25, 3], f64: 0.1, i64: 2 ** 40 + 1, i32: [-7, 2_000_000_000], flag: true, word: 'ünïcode ✓' },
    { f32: [0, 0, 1e-3], f64: -123456.789012345, i64: -5, i32: [0, 1], flag: false, word: '' },
    { f32: [1, 2, 4], f64: 1e30, i64: Number.MAX_SAFE_INTEGER, i32: [3, 4], flag: true, word: 'x' },
  ];

  test('the signature is read from the graph, with the batch dimension', () => {
    const { signature, problems, ignoredOutputs } = readSignature(session);
    assert.deepEqual(problems, []);
    assert.deepEqual(ignoredOutputs, []);
    assert.deepEqual(signature.inputs, [
      { name: 'f32', type: 'float32', shape: ['N', 3] },
      { name: 'f64', type: 'float64', shape: ['N'] },
      { name: 'i64', type: 'int64', shape: ['N', 1] },
      { name: 'i32', type: 'int32', shape: ['N', 2] },
      { name: 'flag', type: 'bool', shape: ['N'] },
      { name: 'word', type: 'string', shape: ['N'] },
    ]);
    assert.deepEqual(
      signature.outputs.map((o) => `${o.name}:${o.type}`),
      ['f32_out:float32', 'f64_out:float64', 'i64_out:int64', 'i32_out:int32', 'flag_out:bool', 'word_out:string', 'numeric_sum:float32'],
    );
  });

  test('encoding builds one typed tensor per input, in the graph’s rank', () => {
    const { signature } = readSignature(session);
    const feeds = encodeParts(signature.inputs, [records]);
    const summary = Object.fromEntries(Object.entries(feeds).map(([k, t]) => [k, [t.type, t.dims.join('x'), t.data.constructor.name]]));
    assert.deepEqual(summary, {
      f32: ['float32', '3x3', 'Float32Array'],
      f64: ['float64', '3', 'Float64Array'],
      i64: ['int64', '3x1', 'BigInt64Array'],
      i32: ['int32', '3x2', 'Int32Array'],
      flag: ['bool', '3', 'Uint8Array'],
      word: ['string', '3', 'Array'],
    });
    assert.equal((feeds.i64!.data as BigInt64Array)[0], 2n ** 40n + 1n);
  });

  test('every element type survives records → session.run → per-record JSON', async () => {
    const { signature } = readSignature(session);
    const schema = recordSchemaFromSignature(signature);
    for (const r of records) schema.parse(r);
    const results = await session.run(encodeParts(signature.inputs, [records]));
    const decoded = decodeOutputs(signature.outputs, results, records.length);
    assert.equal(decoded.length, records.length);
    records.forEach((record, i) => {
      const out = decoded[i]!;
      assert.deepEqual(out.f32_out, (record.f32 as number[]).map(Math.fround), 'float32 values, as float32 holds them');
      assert.equal(out.f64_out, record.f64, 'float64 is not narrowed to float32');
      assert.equal(out.i64_out, record.i64, '[N,1] decodes to a scalar');
      assert.deepEqual(out.i32_out, record.i32);
      assert.equal(out.flag_out, record.flag);
      assert.equal(out.word_out, record.word);
      const parts = [...(record.f32 as number[]), record.f64 as number, record.i64 as number, ...(record.i32 as number[]), record.flag ? 1 : 0];
      const expected = Math.fround(parts.reduce((a, b) => a + Math.fround(b), 0));
      const sum = out.numeric_sum as number;
      assert.ok(Math.abs(sum - expected) <= Math.abs(expected) * 1e-6 + 1e-6, `record ${i}: sum ${sum}, expected ≈ ${expected}`);
    });
    assert.deepEqual(JSON.parse(JSON.stringify(decoded)), decoded, 'the decoded values are plain JSON');
  });

  test('an int64 beyond 2^53 is decoded as a decimal string, not a rounded number', () => {
    const outputs = [{ name: 'big', type: 'int64' as const, shape: ['N'] }];
    const tensor = new Tensor('int64', BigInt64Array.from([2n ** 60n + 3n, -4n]), [2]);
    assert.deepEqual(decodeOutputs(outputs, { big: tensor }, 2), [{ big: '1152921504606846979' }, { big: -4 }]);
  });

  test('an output that does not keep the batch is refused rather than split wrongly', () => {
    const outputs = [{ name: 'pooled', type: 'float32' as const, shape: [1, 2] }];
    const tensor = new Tensor('float32', new Float32Array(2), [1, 2]);
    assert.throws(() => decodeOutputs(outputs, { pooled: tensor }, 3), /pooled has shape \[1, 2\], expected 3 rows/);
  });
});
