// The columnar form of an online call: every datatype survives the queue's JSON as it was sent,
// and a frame that is not what packColumns wrote is refused where the worker unpacks it.
import { test } from 'node:test';
import assert from 'node:assert/strict';
import { pack } from 'msgpackr';
import { packColumns, recordsOf, unpackColumns, type Column, type Columns } from '../../src/shared/tensor-columns.ts';

const columns = (inputs: Record<string, Column>, rows: number): Columns => ({ rows, inputs: new Map(Object.entries(inputs)) });

test('every datatype comes back as it went, through the JSON a queue job is', () => {
  const sent = columns(
    {
      amount: { datatype: 'FP64', width: 1, data: Float64Array.of(1.5, 2.25, 1e300) },
      scores: { datatype: 'FP32', width: 2, data: Float32Array.of(0.1, 0.2, 0.3, 0.4, 0.5, NaN) },
      hour: { datatype: 'INT32', width: 1, data: Int32Array.of(0, 23, -7) },
      big: { datatype: 'INT64', width: 1, data: BigInt64Array.of(2n ** 60n + 1n, -3n, 0n) },
      flag: { datatype: 'BOOL', width: 1, data: Uint8Array.of(1, 0, 1) },
      category: { datatype: 'BYTES', width: 1, data: ['travel', 'grocery', 'é'] },
    },
    3,
  );
  const job = JSON.parse(JSON.stringify({ packed: packColumns(sent) })) as { packed: string };
  const got = unpackColumns(job.packed);
  assert.equal(got.rows, 3);
  assert.deepEqual([...got.inputs.keys()], [...sent.inputs.keys()]);
  for (const [name, column] of sent.inputs) assert.deepEqual(got.inputs.get(name), column, name);
});

test('the records a call holds, for the paths that take records', () => {
  const got = recordsOf(
    columns(
      {
        amount: { datatype: 'FP64', width: 1, data: Float64Array.of(1.5, 2) },
        pair: { datatype: 'INT64', width: 2, data: BigInt64Array.of(1n, 2n, 3n, 4n) },
        flag: { datatype: 'BOOL', width: 1, data: Uint8Array.of(0, 1) },
      },
      2,
    ),
  );
  assert.deepEqual(got, [
    { amount: 1.5, pair: [1, 2], flag: false },
    { amount: 2, pair: [3, 4], flag: true },
  ]);
});

test('a column of the wrong length or an unknown datatype is refused when unpacked', () => {
  const frame = (inputs: unknown[]) => Buffer.from(pack({ rows: 2, inputs })).toString('base64');
  const f64 = (n: number) => new Uint8Array(Float64Array.from({ length: n }, (_, i) => i).buffer);
  assert.doesNotThrow(() => unpackColumns(frame([['a', 'FP64', 1, f64(2)]])));
  assert.throws(() => unpackColumns(frame([['a', 'FP64', 1, f64(3)]])), /input a holds 24 bytes/);
  assert.throws(() => unpackColumns(frame([['a', 'FP16', 1, f64(2)]])), /input a has datatype FP16/);
  assert.throws(() => unpackColumns(frame([['a', 'BYTES', 1, ['x']]])), /input a holds 1 values, not 2 × 1/);
  assert.throws(() => unpackColumns(frame([['a', 'FP64', 0, f64(0)]])), /input a has width 0/);
});
