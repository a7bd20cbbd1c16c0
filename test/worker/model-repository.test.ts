// The worker's model repository on real files and real sessions: junk beside good models, the
// version rule (explicit version, alias, champion, latest), reload without restart, and sessions
// closed only once the work holding them lets go.
import { test, describe, before, after } from 'node:test';
import assert from 'node:assert/strict';
import { createHash } from 'node:crypto';
import { cp, mkdir, mkdtemp, rm, writeFile } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import type { RepositorySnapshot, VersionSnapshot } from '../../src/shared/model-catalog.ts';
import { ModelRepository, type ModelLease, type ResolveResult } from '../../src/worker/model-repository.ts';
import type { ModelVersion } from '../../src/worker/model-version.ts';
import { allTypesGraph, fixedBatchGraph, float16Graph, labelEncoderGraph, softmaxGraph } from '../helpers/onnx-graphs.ts';
import { waitFor } from '../helpers/wait.ts';

const COMMITTED = new URL('../../models/', import.meta.url).pathname;
const sha256 = (b: Uint8Array) => createHash('sha256').update(b).digest('hex');

// Two classifiers that disagree on every row, so a reply shows which version scored it.
const FIRST = softmaxGraph(
  [
    [4, -4],
    [0, 0],
  ],
  [0, 0],
);
const SECOND = softmaxGraph(
  [
    [-4, 4],
    [0, 0],
  ],
  [0, 0],
);
const ROW = { x: [1, 0] };

async function put(root: string, path: string, content: Uint8Array | string): Promise<void> {
  const file = join(root, path);
  await mkdir(join(file, '..'), { recursive: true });
  await writeFile(file, content);
}

function version(snapshot: RepositorySnapshot, name: string, v: number): VersionSnapshot | undefined {
  return snapshot.models.find((m) => m.name === name)?.versions.find((x) => x.version === v);
}

function resolved(result: ResolveResult): ModelVersion {
  assert.ok(result.ok, result.ok ? '' : `${result.error}: ${result.message}`);
  return result.model;
}

function lease(result: ModelLease | { ok: false; message: string }): ModelLease {
  assert.ok('model' in result, 'message' in result ? result.message : '');
  return result;
}

/** Which class a version gives ROW: 0 for FIRST, 1 for SECOND. */
async function classOf(model: ModelVersion): Promise<number> {
  const [out] = await model.run([ROW]);
  return out!.label as number;
}

describe('model repository: a directory with junk beside good models', () => {
  let root: string;
  let repository: ModelRepository;
  let snapshot: RepositorySnapshot;

  before(async () => {
    root = await mkdtemp(join(tmpdir(), 'model-repo-'));
    await cp(join(COMMITTED, 'fraud'), join(root, 'fraud'), { recursive: true });
    await cp(join(COMMITTED, 'species'), join(root, 'species'), { recursive: true });
    await put(root, 'bare/1/model.onnx', FIRST);
    await put(root, 'bare/2/model.onnx', SECOND);
    await put(root, 'types/1/model.onnx', allTypesGraph());
    await put(root, 'colors/1/model.onnx', labelEncoderGraph(['red', 'green', 'blue']));
    // Version 2 of `mixed` is corrupt: version 1 must serve and `latest` must fall back to it.
    await put(root, 'mixed/1/model.onnx', FIRST);
    await put(root, 'mixed/2/model.onnx', Buffer.from('this is not a protobuf at all, just text'));
    await put(root, 'truncated/1/model.onnx', FIRST.subarray(0, Math.floor(FIRST.length / 2)));
    await put(root, 'badmanifest/1/model.onnx', FIRST);
    await put(root, 'badmanifest/1/manifest.json', '{"version": 3}');
    await put(root, 'notjson/1/model.onnx', FIRST);
    await put(root, 'notjson/1/manifest.json', '{"version": ');
    await put(root, 'sha/1/model.onnx', FIRST);
    await put(root, 'sha/1/manifest.json', JSON.stringify({ bytes: SECOND.length, sha256: sha256(SECOND) }));
    await put(root, 'half/1/model.onnx', FIRST);
    await put(root, 'half/1/manifest.json', JSON.stringify({ bytes: FIRST.length + 10, sha256: sha256(FIRST) }));
    await put(root, 'fp16/1/model.onnx', float16Graph());
    await put(root, 'fixed/1/model.onnx', fixedBatchGraph());
    await put(root, 'empty/1/.keep', '');
    await put(root, 'labels/1/model.onnx', FIRST);
    await put(root, 'labels/1/manifest.json', JSON.stringify({ class_labels: { label: ['yes', 'no'], scores: ['a', 'b', 'c'] } }));
    // Junk that is not a model at all: a stray file, a non-numeric and a zero version, an alias file that is not JSON.
    await put(root, 'README.txt', 'not a model');
    await put(root, 'bare/notes/model.onnx', 'ignored');
    await put(root, 'bare/0/model.onnx', 'ignored');
    await put(root, 'bare/aliases.json', '{"champion": "1"}');
    await put(root, 'mixed/aliases.json', '{champion');

    repository = new ModelRepository({ root });
    snapshot = await repository.refresh();
  });
  after(async () => {
    await repository.close();
    await rm(root, { recursive: true, force: true });
  });

  test('good models load; each bad version is listed as failed with its reason', () => {
    const states = Object.fromEntries(snapshot.models.flatMap((m) => m.versions.map((v) => [`${m.name}/${v.version}`, v.state])));
    assert.deepEqual(states, {
      'badmanifest/1': 'failed',
      'bare/1': 'loaded',
      'bare/2': 'loaded',
      'colors/1': 'loaded',
      'empty/1': 'failed',
      'fixed/1': 'failed',
      'fp16/1': 'failed',
      'fraud/1': 'loaded',
      'fraud/2': 'loaded',
      'half/1': 'failed',
      'labels/1': 'failed',
      'mixed/1': 'loaded',
      'mixed/2': 'failed',
      'notjson/1': 'failed',
      'sha/1': 'failed',
      'species/1': 'loaded',
      'truncated/1': 'failed',
      'types/1': 'loaded',
    });
    const reason = (name: string) => version(snapshot, name, name === 'mixed' ? 2 : 1)!.reason ?? '';
    // The file by its name in the version's directory: the reason reaches callers, the server's paths must not.
    assert.match(reason('mixed'), /^model\.onnx: is not a loadable ONNX model/);
    assert.match(reason('truncated'), /^model\.onnx: is not a loadable ONNX model/);
    assert.match(reason('badmanifest'), /^manifest\.json: is not a valid manifest[\s\S]*version/);
    assert.match(reason('notjson'), /^manifest\.json: is not valid JSON/);
    assert.match(reason('sha'), /sha256 mismatch/);
    assert.match(reason('half'), /truncated: \d+ bytes, manifest says \d+/);
    assert.match(reason('fp16'), /input h has element type float16, which the service cannot take/);
    assert.match(reason('fixed'), /input x has shape \[1, 3\]: its first dimension is fixed/);
    assert.equal(reason('empty'), 'model.onnx: missing');
    assert.match(reason('labels'), /class_labels give 3 labels for scores, shape \[batch, 2\]/);
    for (const v of snapshot.models.flatMap((m) => m.versions)) assert.ok(!v.reason?.includes(root), `${v.reason} names the repository`);
    for (const v of snapshot.models.flatMap((m) => m.versions)) {
      if (v.state === 'failed') assert.equal(v.signature, undefined);
    }
  });

  test('junk is skipped or reported, never fatal', () => {
    const names = snapshot.models.map((m) => m.name);
    assert.ok(!names.includes('README.txt'));
    assert.deepEqual(
      snapshot.models.find((m) => m.name === 'bare')!.versions.map((v) => v.version),
      [1, 2],
    );
    const mixed = snapshot.models.find((m) => m.name === 'mixed')!;
    assert.match(mixed.problems.join('\n'), /mixed\/aliases\.json: is not valid JSON/);
    assert.deepEqual(mixed.aliases, {});
  });

  test('the snapshot carries signatures and what manifests add, and is plain JSON', () => {
    assert.deepEqual(JSON.parse(JSON.stringify(snapshot)), snapshot);
    const fraud = version(snapshot, 'fraud', 1)!;
    assert.match(fraud.display_version!, /^fraud-gbdt-1\.0\.0\+[0-9a-f]{8}$/);
    assert.deepEqual(fraud.signature!.inputs, [{ name: 'features', type: 'float32', shape: ['N', 17] }]);
    assert.deepEqual(fraud.decision, { output: 'probabilities', labels: ['approve', 'review', 'decline'] });
    assert.deepEqual(fraud.record_fields, ['transaction_amount', 'card_present', 'hour_of_day', 'days_since_last_transaction', 'merchant_category']);
    const species = version(snapshot, 'species', 1)!;
    assert.deepEqual(species.signature!.inputs, [{ name: 'measurements', type: 'float32', shape: ['N', 4] }]);
    assert.deepEqual(species.class_labels!.label, ['setosa', 'versicolor', 'virginica']);
    const bare = version(snapshot, 'bare', 2)!;
    assert.equal(bare.display_version, '2', 'a bare model is named by its version number');
    assert.deepEqual(bare.signature, {
      inputs: [{ name: 'x', type: 'float32', shape: ['batch', 2] }],
      outputs: [
        { name: 'scores', type: 'float32', shape: ['batch', 2] },
        { name: 'label', type: 'int64', shape: ['batch'] },
      ],
    });
    assert.deepEqual(version(snapshot, 'colors', 1)!.signature!.inputs, [{ name: 'color', type: 'string', shape: ['N'] }]);
  });

  test('the version rule: explicit version, else alias, else champion, else latest', async () => {
    assert.equal(resolved(repository.resolve('bare')).version, 1, 'champion wins over latest');
    assert.equal(resolved(repository.resolve('bare', { alias: 'latest' })).version, 2);
    assert.equal(resolved(repository.resolve('bare', { alias: 'champion' })).version, 1);
    assert.equal(resolved(repository.resolve('bare', { version: 2 })).version, 2);
    assert.equal(await classOf(resolved(repository.resolve('bare', { version: 2 }))), 1);
    assert.equal(resolved(repository.resolve('mixed')).version, 1, 'latest is the highest version that loaded');
    assert.equal(snapshot.models.find((m) => m.name === 'mixed')!.default_version, 1);
    assert.equal(snapshot.models.find((m) => m.name === 'bare')!.default_version, 1);
  });

  test('unknown names, versions and aliases are model_not_found; failed ones model_unavailable', () => {
    const failure = (r: ResolveResult) => (r.ok ? 'ok' : r.error);
    assert.equal(failure(repository.resolve('nope')), 'model_not_found');
    assert.equal(failure(repository.resolve('bare', { version: 9 })), 'model_not_found');
    assert.equal(failure(repository.resolve('bare', { alias: 'challenger' })), 'model_not_found');
    assert.equal(failure(repository.resolve('mixed', { version: 2 })), 'model_unavailable');
    assert.equal(failure(repository.resolve('fp16')), 'model_unavailable');
    const r = repository.resolve('fp16');
    assert.ok(!r.ok && /float16/.test(r.message), 'the reason travels with the failure');
  });

  test('models run by their records: fraud by its manifest fields, others by graph inputs', async () => {
    const fraud = resolved(repository.resolve('fraud'));
    assert.ok(fraud.recordEncoding, 'the fraud manifest gives a record encoding');
    const [p] = await fraud.probabilities([
      { transaction_amount: 594.4, merchant_category: 'travel', card_present: false, hour_of_day: 0, days_since_last_transaction: 17.9457 },
    ]);
    assert.ok(p! > 0 && p! < 1);

    const colors = resolved(repository.resolve('colors'));
    const coded = await colors.run([{ color: 'blue' }, { color: 'red' }, { color: 'mauve' }]);
    assert.deepEqual(coded, [{ code: 2 }, { code: 0 }, { code: -1 }]);

    const species = resolved(repository.resolve('species'));
    const [flower] = await species.run([{ measurements: [5.0, 3.4, 1.5, 0.2] }]);
    assert.equal(flower!.label, 'setosa');
    const probabilities = flower!.probabilities as Record<string, number>;
    assert.deepEqual(Object.keys(probabilities), ['setosa', 'versicolor', 'virginica']);
    assert.ok(probabilities.setosa! > 0.9);
  });

  test('MODELS holds only what it names, following an alias to its version', async () => {
    const only = new ModelRepository({
      root,
      models: [{ name: 'bare', alias: 'champion' }, { name: 'species' }, { name: 'absent' }],
    });
    try {
      const s = await only.refresh();
      assert.deepEqual(
        s.models.map((m) => `${m.name}:${m.versions.map((v) => v.version).join(',')}`),
        ['bare:1', 'species:1'],
      );
      assert.match(s.problems.join('\n'), /MODELS names absent/);
      assert.equal(resolved(only.resolve('bare')).version, 1);
    } finally {
      await only.close();
    }
  });
});

describe('model repository: reload without restart', () => {
  let root: string;
  let repository: ModelRepository;
  before(async () => {
    root = await mkdtemp(join(tmpdir(), 'model-reload-'));
    await put(root, 'm/1/model.onnx', FIRST);
    repository = new ModelRepository({ root });
    await repository.refresh();
  });
  after(async () => {
    await repository.close();
    await rm(root, { recursive: true, force: true });
  });

  test('a new version loads beside the old one; a moved alias switches new calls; in-flight work keeps its session', async () => {
    const held = lease(repository.acquire('m'));
    assert.equal(held.model.version, 1);

    await put(root, 'm/2/model.onnx', SECOND);
    let s = await repository.refresh();
    assert.deepEqual(
      s.models[0]!.versions.map((v) => `${v.version}:${v.state}`),
      ['1:loaded', '2:loaded'],
    );
    assert.equal(resolved(repository.resolve('m')).version, 2, 'latest moved to the new version');

    await put(root, 'm/aliases.json', JSON.stringify({ champion: '1' }));
    await repository.refresh();
    assert.equal(resolved(repository.resolve('m')).version, 1, 'champion now decides');
    await put(root, 'm/aliases.json', JSON.stringify({ champion: '2' }));
    s = await repository.refresh();
    assert.equal(resolved(repository.resolve('m')).version, 2);
    assert.deepEqual(s.models[0]!.serving, { latest: 2, champion: 2 });

    // Version 1 disappears while work still holds it: that work finishes on it, new calls cannot reach it.
    await rm(join(root, 'm/1'), { recursive: true });
    s = await repository.refresh();
    assert.deepEqual(
      s.models[0]!.versions.map((v) => v.version),
      [2],
    );
    assert.equal(repository.resolve('m', { version: 1 }).ok, false);
    assert.equal(held.model.retired, true);
    assert.equal(await classOf(held.model), 0, 'the held session still scores');
    const closed = held.model.retire();
    let isClosed = false;
    void closed.then(() => (isClosed = true));
    await new Promise((r) => setImmediate(r));
    assert.equal(isClosed, false, 'not closed while a lease is held');
    held.release();
    held.release(); // idempotent
    await closed;
    await assert.rejects(held.model.run([ROW]), /closed/);
  });

  test('a new version that fails to load leaves the previous one serving, even when the alias moves to it', async () => {
    await put(root, 'm/3/model.onnx', FIRST.subarray(0, 40));
    await put(root, 'm/aliases.json', JSON.stringify({ champion: '3' }));
    const s = await repository.refresh();
    assert.equal(version(s, 'm', 3)!.state, 'failed');
    assert.equal(resolved(repository.resolve('m')).version, 2, 'champion keeps its previous version');
    assert.equal(resolved(repository.resolve('m', { alias: 'latest' })).version, 2);
    assert.equal(repository.resolve('m', { version: 3 }).ok, false);

    // Fixed in place: the changed file is tried again, and the alias follows once it loads.
    await put(root, 'm/3/model.onnx', FIRST);
    const fixed = await repository.refresh();
    assert.equal(version(fixed, 'm', 3)!.state, 'loaded');
    assert.equal(resolved(repository.resolve('m')).version, 3);
    assert.equal(await classOf(resolved(repository.resolve('m'))), 0);
  });

  test('a version whose file is replaced reloads; the old session closes once released', async () => {
    const held = lease(repository.acquire('m', { version: 2 }));
    const before = held.model;
    assert.equal(await classOf(before), 1);
    await put(root, 'm/2/model.onnx', FIRST);
    await repository.refresh();
    const after = resolved(repository.resolve('m', { version: 2 }));
    assert.notEqual(after, before);
    assert.equal(await classOf(after), 0, 'new calls get the new file');
    assert.equal(await classOf(before), 1, 'work in flight finishes on the old one');
    const closed = before.retire();
    held.release();
    await closed;
  });

  test('a broken replacement keeps the loaded session, with the reason shown', async () => {
    await put(root, 'm/2/model.onnx', 'garbage');
    const s = await repository.refresh();
    const v2 = version(s, 'm', 2)!;
    assert.equal(v2.state, 'loaded');
    assert.match(v2.reason!, /not a loadable ONNX model/);
    assert.equal(await classOf(resolved(repository.resolve('m', { version: 2 }))), 0);
  });

  test('while a new target loads, calls are answered by the version the alias named before', async () => {
    const seen: (number | string)[] = [];
    const observer = new ModelRepository({
      root,
      onChange: (s) => {
        // Called as soon as the scan is applied, before the loads it starts have finished.
        const v4 = version(s, 'm', 4);
        if (v4?.state === 'loading') {
          const r = observer.resolve('m');
          seen.push(r.ok ? r.model.version : r.error);
        }
      },
    });
    try {
      await observer.refresh();
      const current = resolved(observer.resolve('m')).version;
      await put(root, 'm/4/model.onnx', SECOND);
      await put(root, 'm/aliases.json', JSON.stringify({ champion: '4' }));
      await observer.refresh();
      assert.ok(seen.length > 0, 'the loading state was observed');
      assert.deepEqual(new Set(seen), new Set([current]));
      assert.equal(resolved(observer.resolve('m')).version, 4);
    } finally {
      await observer.close();
    }
  });

  test('MODELS=name@alias: a moved alias loads its new target before the old version is let go', async () => {
    await put(root, 'm/aliases.json', JSON.stringify({ champion: '3' }));
    const seen: (number | string)[] = [];
    const pinned = new ModelRepository({
      root,
      models: [{ name: 'm', alias: 'champion' }],
      onChange: (s) => {
        if (version(s, 'm', 4)?.state === 'loading') {
          const r = pinned.resolve('m');
          seen.push(r.ok ? r.model.version : r.error);
        }
      },
    });
    try {
      let s = await pinned.refresh();
      assert.deepEqual(
        s.models[0]!.versions.map((v) => v.version),
        [3],
      );
      await put(root, 'm/aliases.json', JSON.stringify({ champion: '4' }));
      s = await pinned.refresh();
      assert.deepEqual(new Set(seen), new Set([3]), 'version 3 answered while version 4 loaded');
      assert.deepEqual(
        s.models[0]!.versions.map((v) => v.version),
        [4],
        'then version 3 was let go',
      );
      assert.equal(resolved(pinned.resolve('m')).version, 4);
      assert.equal(resolved(pinned.resolve('m', { alias: 'latest' })).version, 4);
    } finally {
      await pinned.close();
    }
  });

  test('a root that cannot be read keeps what is held', async () => {
    const moved = `${root}-away`;
    const away = new ModelRepository({ root });
    try {
      await away.refresh();
      const before = resolved(away.resolve('m')).version;
      await rm(moved, { recursive: true, force: true });
      await cp(root, moved, { recursive: true });
      await rm(root, { recursive: true });
      const s = await away.refresh();
      assert.match(s.problems.join('\n'), /cannot be read \(ENOENT\)/);
      assert.equal(resolved(away.resolve('m')).version, before);
      await cp(moved, root, { recursive: true });
      await away.refresh();
      assert.deepEqual(away.snapshot().problems, []);
    } finally {
      await away.close();
      await rm(moved, { recursive: true, force: true });
    }
  });

  test('the poll timer and SIGHUP pick up new versions without a call to refresh()', async () => {
    const polled = new ModelRepository({ root, pollSeconds: 1 });
    const hup = new ModelRepository({ root, pollSeconds: 0 });
    const changes: RepositorySnapshot[] = [];
    const watched = new ModelRepository({ root, pollSeconds: 0, onChange: (s) => changes.push(s) });
    try {
      await Promise.all([polled.refresh(), hup.refresh(), watched.refresh()]);
      polled.startPolling();
      const stopHup = hup.startPolling();
      await put(root, 'm/7/model.onnx', SECOND);
      await waitFor(() => polled.resolve('m', { version: 7 }).ok, { what: 'the poll to load version 7' });
      assert.equal(hup.resolve('m', { version: 7 }).ok, false, 'no timer when MODEL_POLL_SECONDS is 0');
      process.kill(process.pid, 'SIGHUP');
      await waitFor(() => hup.resolve('m', { version: 7 }).ok, { what: 'SIGHUP to load version 7' });
      stopHup();
      assert.ok(changes.length > 0 && changes.every((c) => JSON.parse(JSON.stringify(c))));
    } finally {
      await Promise.all([polled.close(), hup.close(), watched.close()]);
    }
  });
});
