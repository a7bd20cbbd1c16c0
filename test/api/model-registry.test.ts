// The api's model registry over a real Redis: snapshots written the way workers write them
// (recordHeartbeat), read back and merged; the one resolution rule, 404 vs 503, a moved alias
// whose new target is still loading, and the record schema built from a published signature.
import { after, before, test } from 'node:test';
import assert from 'node:assert/strict';
import { startTestRedis, type TestRedis } from '../helpers/redis-server.ts';
import { ModelRegistry } from '../../src/api/model-registry.ts';
import { recordHeartbeat, removeWorker } from '../../src/shared/worker-registry.ts';
import type { ModelSnapshot, RepositorySnapshot, VersionSnapshot } from '../../src/shared/model-catalog.ts';
import type { ModelSignature } from '../../src/shared/model-signature.ts';
import { ModelNotFoundError, ModelUnavailableError } from '../../src/shared/errors.ts';

const silent = { debug() {}, info() {}, warn() {}, error() {} };
const signature: ModelSignature = {
  inputs: [{ name: 'x', type: 'float32', shape: ['N', 2] }],
  outputs: [{ name: 'y', type: 'float32', shape: ['N'] }],
};
const loaded = (version: number): VersionSnapshot => ({ version, state: 'loaded', display_version: `v${version}`, signature });

function model(name: string, versions: VersionSnapshot[], extra: Partial<ModelSnapshot> = {}): ModelSnapshot {
  return { name, versions, aliases: {}, serving: {}, default_version: null, on_disk: versions.map((v) => v.version), problems: [], ...extra };
}
function snapshot(models: ModelSnapshot[], other_models: Record<string, number[]> = {}): RepositorySnapshot {
  return { root: 'models', refreshed_at: new Date().toISOString(), models, problems: [], other_models };
}

let redis: TestRedis;
let prefixes = 0;
before(async () => {
  redis = await startTestRedis();
});
after(async () => {
  await redis.close();
});

async function registryWith(workers: RepositorySnapshot[]) {
  const prefix = `registry-${prefixes++}`;
  for (const [i, s] of workers.entries()) await recordHeartbeat(redis.client, prefix, `w${i}`, { modelVersion: 'none', snapshot: s });
  const registry = new ModelRegistry({ redis: redis.client, prefix, logger: silent, refreshMs: 60_000 });
  await registry.refresh();
  return { registry, prefix };
}

const errorOf = (fn: () => unknown) => {
  try {
    fn();
  } catch (error) {
    return error;
  }
  assert.fail('expected a throw');
};

test('no version: champion when the model has one, else the highest version held', async () => {
  const { registry } = await registryWith([
    snapshot([
      model('a', [loaded(1), loaded(2), loaded(3)], { aliases: { champion: 2 } }),
      model('b', [loaded(1), loaded(4), { version: 5, state: 'failed', reason: 'corrupt' }]),
    ]),
  ]);
  assert.equal(registry.resolve('a').version, 2);
  assert.equal(registry.resolve('a', { alias: 'latest' }).version, 3);
  assert.equal(registry.resolve('b').version, 4, 'latest is the highest version held, not the highest on disk');
  assert.equal(registry.get('b')!.default_version, 4);
  assert.equal(registry.resolve('a', { version: 1 }).view.display_version, 'v1');
});

test('unknown model, version or alias: 404; known but held by no live worker: 503', async () => {
  const { registry } = await registryWith([
    snapshot([model('a', [loaded(1), { version: 2, state: 'failed', reason: 'bad graph' }, { version: 3, state: 'loading' }])], { other: [1, 2] }),
  ]);
  for (const fn of [() => registry.resolve('nope'), () => registry.resolve('a', { version: 9 }), () => registry.resolve('a', { alias: 'shadow' })]) {
    assert.ok(errorOf(fn) instanceof ModelNotFoundError);
  }
  const failed = errorOf(() => registry.resolve('a', { version: 2 }));
  assert.ok(failed instanceof ModelUnavailableError);
  assert.match(failed.message, /bad graph/);
  assert.ok(errorOf(() => registry.resolve('a', { version: 3 })) instanceof ModelUnavailableError);
  // On disk beside a worker's MODELS selection, held by none.
  const other = errorOf(() => registry.resolve('other'));
  assert.ok(other instanceof ModelUnavailableError, String(other));
  assert.deepEqual(
    registry.get('other')!.versions.map((v) => v.state),
    ['unavailable', 'unavailable'],
  );
  assert.equal(registry.get('a')!.versions.find((v) => v.version === 2)!.reason, 'bad graph');
});

test('a moved champion keeps its previous version while the new one loads on every worker', async () => {
  const moving = model('a', [loaded(1), { version: 2, state: 'loading' }], { aliases: { champion: 2 }, serving: { champion: 1, latest: 1 } });
  const { registry, prefix } = await registryWith([snapshot([moving])]);
  assert.equal(registry.resolve('a').version, 1);
  // One worker has loaded it: calls go to version 2 at once.
  await recordHeartbeat(redis.client, prefix, 'w1', {
    modelVersion: 'none',
    snapshot: snapshot([model('a', [loaded(1), loaded(2)], { aliases: { champion: 2 } })]),
  });
  await registry.refresh();
  assert.equal(registry.resolve('a').version, 2);
  assert.equal(registry.get('a')!.versions.find((v) => v.version === 2)!.workers, 1);
});

test('workers merge: a version is held when any live worker holds it; one leaving leaves what the others hold', async () => {
  const { registry, prefix } = await registryWith([snapshot([model('a', [loaded(1)])]), snapshot([model('a', [loaded(1), loaded(2)])])]);
  assert.equal(registry.get('a')!.versions.find((v) => v.version === 1)!.workers, 2);
  assert.deepEqual(registry.held(), { a: [1, 2] });
  await removeWorker(redis.client, prefix, 'w1');
  await registry.refresh();
  assert.deepEqual(registry.held(), { a: [1] });
  assert.ok(errorOf(() => registry.resolve('a', { version: 2 })) instanceof ModelNotFoundError, 'gone from every snapshot, on no disk');
  // The last worker gone: nothing can say what exists, so a model is unavailable, never not found.
  await removeWorker(redis.client, prefix, 'w0');
  await registry.refresh();
  assert.ok(errorOf(() => registry.resolve('a')) instanceof ModelUnavailableError);
  assert.ok(errorOf(() => registry.resolve('never-seen')) instanceof ModelUnavailableError);
});

test('the record schema follows the published signature: a wrong, missing or extra field is named', async () => {
  const { registry } = await registryWith([snapshot([model('a', [loaded(1)])])]);
  const schema = registry.recordSchema(registry.resolve('a'));
  assert.ok(schema.safeParse({ x: [1, 2] }).success);
  const bad = schema.safeParse({ x: [1, 'b'], z: 1 });
  assert.ok(!bad.success);
  const paths = bad.error.issues.map((i) => [...i.path, ...('keys' in i ? i.keys : [])].join('.'));
  assert.ok(paths.includes('x.1'), paths.join(','));
  assert.ok(paths.includes('z'), paths.join(','));
  assert.ok(!schema.safeParse({}).success);
});
