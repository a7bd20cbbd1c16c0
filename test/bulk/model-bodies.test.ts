// Bodies of bulk jobs for models other than fraud: each format's rows validated against the
// schema of a signature (plus `id`), problems named by line or index and field.
import { test } from 'node:test';
import assert from 'node:assert/strict';
import { csvProblem, modelBodyParser, type ModelRow } from '../../src/api/bulk/model-bodies.ts';
import { ValidationError } from '../../src/shared/errors.ts';
import type { ModelSignature } from '../../src/shared/model-signature.ts';

const SCALARS: Pick<ModelSignature, 'inputs'> = {
  inputs: [
    { name: 'x', type: 'float32', shape: ['N'] },
    { name: 'n', type: 'int64', shape: ['N', 1] },
    { name: 'ok', type: 'bool', shape: ['N'] },
    { name: 'w', type: 'string', shape: ['N'] },
  ],
};
const WITH_ARRAY: Pick<ModelSignature, 'inputs'> = { inputs: [{ name: 'v', type: 'float32', shape: ['N', 3] }] };

async function rows(type: string, signature: Pick<ModelSignature, 'inputs'>, text: string): Promise<ModelRow[]> {
  const out: ModelRow[] = [];
  async function* body() {
    // Split mid-record, as a network would.
    const bytes = Buffer.from(text);
    for (let i = 0; i < bytes.length; i += 7) yield bytes.subarray(i, i + 7);
  }
  for await (const row of modelBodyParser(type, signature)(body())) out.push(row);
  return out;
}

const paths = (rs: ModelRow[]) => rs.flatMap((r) => (r.ok ? [] : r.details.map((d) => d.path)));

test('CSV: cells read by element type, the id kept, a bad cell named by line and field', async () => {
  const got = await rows('text/csv', SCALARS, 'id,x,n,ok,w\na,1.5,2,true,"hi, there"\n,2,x,0,\n');
  assert.deepEqual(got[0], { ok: true, record: { id: 'a', x: 1.5, n: 2, ok: true, w: 'hi, there' } });
  assert.deepEqual(paths(got), ['lines.3.n']);
});

test('CSV: an unknown or missing column is a header problem; a model with an array input takes no CSV', async () => {
  await assert.rejects(rows('text/csv', SCALARS, 'x,n,ok,extra\n1,2,true,3\n'), (err: ValidationError) => {
    assert.deepEqual(
      err.details?.map((d) => d.path),
      ['header.extra', 'header.w'],
    );
    return true;
  });
  assert.match(csvProblem(WITH_ARRAY)!, /v \[N, 3\] takes several values per record/);
  assert.equal(csvProblem(SCALARS), undefined);
  assert.throws(() => modelBodyParser('text/csv', WITH_ARRAY), ValidationError);
});

test('NDJSON and JSON: wrong, missing and extra fields named by line or index', async () => {
  const nd = await rows('application/x-ndjson', WITH_ARRAY, '{"v":[1,2,3],"id":"k"}\n\n{"v":[1,2]}\nnot json\n{"v":[1,2,3],"z":1}');
  assert.deepEqual(nd[0], { ok: true, record: { v: [1, 2, 3], id: 'k' } });
  assert.deepEqual(paths(nd), ['lines.3.v', 'lines.4', 'lines.5.z']);
  const json = await rows('application/json', WITH_ARRAY, '{"records":[{"v":[1,2,3]},{"v":["a",2,3]},{}]}');
  assert.deepEqual(paths(json), ['records.1.v.0', 'records.2.v']);
  await assert.rejects(rows('application/json', WITH_ARRAY, '{"rows":[]}'), ValidationError);
});

test('JSON: an element larger than an NDJSON line may be, or nested deeper than a record can be, refuses the body', async () => {
  const parse = (text: string) =>
    modelBodyParser(
      'application/json',
      WITH_ARRAY,
    )(
      (async function* () {
        yield Buffer.from(text);
      })(),
    );
  const drain = async (text: string) => {
    for await (const _ of parse(text)) void _;
  };
  const big = `{"records":[{"v":[1,2,3]},{"v":[${Array(300_000).fill('1.5').join(',')}]}]}`;
  for (const [text, path] of [
    [big, 'records.1'],
    ['{"records":[{"v":[[[1]],2,3]}]}', 'records.0'],
  ] as const) {
    await assert.rejects(drain(text), (err: ValidationError) => {
      assert.equal(err.details?.[0]?.path, path);
      return true;
    });
  }
});
