import { test } from 'node:test';
import assert from 'node:assert/strict';
import { recordSchemaFromSignature, recordValueShape, type TensorSignature } from '../../src/shared/model-signature.ts';
import { formatModelSelector, parseModelSelector, parseModelSelectors } from '../../src/shared/model-selector.ts';
import { loadConfig } from '../../src/shared/config.ts';

const inputs: TensorSignature[] = [
  { name: 'x', type: 'float32', shape: ['N', 3] },
  { name: 'y', type: 'float64', shape: [-1, 1] },
  { name: 'n', type: 'int64', shape: ['batch'] },
  { name: 'k', type: 'int32', shape: ['N'] },
  { name: 'b', type: 'bool', shape: ['N'] },
  { name: 's', type: 'string', shape: ['N', 2] },
];
const schema = recordSchemaFromSignature({ inputs });
const good = { x: [1, 2, 3], y: 0.5, n: 2 ** 40, k: -3, b: false, s: ['a', 'b'] };

function issuePaths(value: unknown): string[] {
  const result = schema.safeParse(value);
  assert.equal(result.success, false);
  return result.error!.issues.map((i) =>
    i.path.length ? i.path.join('.') : i.code === 'unrecognized_keys' ? `extra:${(i as { keys: string[] }).keys.join(',')}` : '?',
  );
}

test('a record carries one value per input: a scalar for [N] and [N,1], k values for [N,k]', () => {
  assert.deepEqual(schema.parse(good), good);
});

test('a wrong, missing or extra field is an issue naming it', () => {
  assert.deepEqual(issuePaths({ ...good, x: [1, 2] }), ['x']);
  assert.deepEqual(issuePaths({ ...good, y: [0.5] }), ['y']);
  assert.deepEqual(issuePaths({ ...good, n: 1.5 }), ['n']);
  assert.deepEqual(issuePaths({ ...good, k: 2 ** 31 }), ['k']);
  assert.deepEqual(issuePaths({ ...good, b: 'true' }), ['b']);
  assert.deepEqual(issuePaths({ ...good, s: ['a', 2] }), ['s.1']);
  assert.deepEqual(issuePaths({ ...good, x: [1, 2, 1e39] }), ['x.2'], 'beyond float32 would become Infinity');
  const { k: _k, ...missing } = good;
  assert.deepEqual(issuePaths(missing), ['k']);
  assert.deepEqual(issuePaths({ ...good, extra: 1 }), ['extra:extra']);
});

test('shapes the service cannot batch are named with the reason', () => {
  assert.match((recordValueShape([1, 4]) as { problem: string }).problem, /first dimension is fixed/);
  assert.match((recordValueShape(['N', 3, 224]) as { problem: string }).problem, /\[N\], \[N,1\] or \[N,k\]/);
  assert.match((recordValueShape(['N', 'k']) as { problem: string }).problem, /fixed k/);
  assert.match((recordValueShape([]) as { problem: string }).problem, /leading batch dimension/);
  assert.throws(() => recordSchemaFromSignature({ inputs: [{ name: 'img', type: 'float32', shape: ['N', 3, 8, 8] }] }), /input img/);
});

test('model selectors: name, name:version, name@alias; MODELS lists them', () => {
  assert.deepEqual(parseModelSelector('fraud'), { name: 'fraud' });
  assert.deepEqual(parseModelSelector('fraud:2'), { name: 'fraud', version: 2 });
  assert.deepEqual(parseModelSelector('species@champion'), { name: 'species', alias: 'champion' });
  assert.deepEqual(parseModelSelectors(' fraud , species:1,,'), [{ name: 'fraud' }, { name: 'species', version: 1 }]);
  for (const bad of ['fraud:0', 'fraud:01', 'fraud:x', 'fraud@3', 'a/b', 'fraud:1@x', '']) {
    assert.throws(() => parseModelSelector(bad), Error, bad);
  }
  assert.equal(formatModelSelector({ name: 'a', alias: 'b' }), 'a@b');
  assert.equal(formatModelSelector({ name: 'a', version: 3 }), 'a:3');
});

test('MODEL_REPOSITORY, MODELS and MODEL_POLL_SECONDS: defaults, parsing, and a bad MODELS named', () => {
  const defaults = loadConfig({});
  assert.equal(defaults.worker.modelRepository, 'models');
  assert.deepEqual(defaults.worker.models, []);
  assert.equal(defaults.worker.modelPollSeconds, 10);
  const set = loadConfig({ MODEL_REPOSITORY: '/srv/models', MODELS: 'fraud@champion,species:1', MODEL_POLL_SECONDS: '0' });
  assert.deepEqual(set.worker.models, [
    { name: 'fraud', alias: 'champion' },
    { name: 'species', version: 1 },
  ]);
  assert.equal(set.worker.modelPollSeconds, 0);
  assert.throws(() => loadConfig({ MODELS: 'fraud:zero' }), /MODELS: "zero" in "fraud:zero" is not a positive integer version/);
  assert.throws(() => loadConfig({ MODEL_POLL_SECONDS: '-1' }), /MODEL_POLL_SECONDS/);
});
