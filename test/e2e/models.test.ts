// Any ONNX model by name and version, end to end: real api and worker processes over a temporary
// model repository, real onnxruntime sessions. A bare model.onnx written by another tool (the
// hand-built graphs of test/helpers/onnx-graphs.ts) is served by records without a code change and
// picked up by the poll without a restart; unknown and unheld models get 404 / 503 at once; a
// corrupt version is listed with its reason while the good one serves; fraud's champion moves
// under load without an error; a version removed while it serves hands its callers on.
import { after, before, describe, test } from 'node:test';
import assert from 'node:assert/strict';
import { cp, readFile, rename, rm, writeFile } from 'node:fs/promises';
import { join } from 'node:path';
import { startTestRedis, type TestRedis } from '../helpers/redis-server.ts';
import { startApi, startWorker, type ServiceProcess } from '../helpers/processes.ts';
import { postJson, readMetric, request, type JsonResponse } from '../helpers/http.ts';
import { waitFor } from '../helpers/wait.ts';
import { allTypesGraph, softmaxGraph } from '../helpers/onnx-graphs.ts';
import { generateFraudRecords } from '../../scripts/model/fraud-data.ts';
import { tempRepository, writeVersion } from '../helpers/model-repository.ts';

let redis: TestRedis;
const started: ServiceProcess[] = [];
const roots: string[] = [];

before(async () => {
  redis = await startTestRedis();
});
after(async () => {
  await Promise.all(started.map((p) => p.stop('SIGKILL')));
  await redis.close();
  await Promise.all(roots.map((r) => rm(r, { recursive: true, force: true })));
});

async function repository(models: string[]): Promise<string> {
  const root = await tempRepository('models-e2e', models);
  roots.push(root);
  return root;
}

async function stack(prefix: string, root: string, workerEnv: Record<string, string> = {}) {
  const env = { REDIS_URL: redis.url, QUEUE_PREFIX: prefix };
  const [api, worker] = await Promise.all([
    startApi(env),
    startWorker({ ...env, MODEL_REPOSITORY: root, MODEL_POLL_SECONDS: '1', LOG_LEVEL: 'info', ...workerEnv }),
  ]);
  started.push(api, worker);
  return { api, worker };
}

/** A reply, with when its call was sent and when the reply was read (epoch ms). */
type Timed = JsonResponse & { sentAt: number; at: number };

/** `clients` callers, each calling again as soon as answered, until `until` (epoch ms). */
async function load(clients: number, until: number, call: () => Promise<JsonResponse>): Promise<Timed[]> {
  const responses: Timed[] = [];
  await Promise.all(
    Array.from({ length: clients }, async () => {
      while (Date.now() < until) {
        const sentAt = Date.now();
        const res = await call();
        responses.push({ ...res, sentAt, at: Date.now() });
      }
    }),
  );
  return responses;
}

const countBy = (rs: JsonResponse[], key: (r: JsonResponse) => string) =>
  JSON.stringify(Object.fromEntries(Object.entries(Object.groupBy(rs, key)).map(([k, v]) => [k, v!.length])));

describe('a repository of several models', () => {
  let root: string;
  let api: ServiceProcess;
  let worker: ServiceProcess;
  let speciesVersion: string;

  before(async () => {
    root = await repository(['fraud', 'species']);
    // A good version 1 and a corrupt (truncated) version 2 of one model.
    const good = softmaxGraph(
      [
        [1, 0],
        [0, 1],
      ],
      [0, 0],
    );
    await writeVersion(root, 'mixed', 1, good);
    await writeVersion(root, 'mixed', 2, good.subarray(0, Math.floor(good.length / 2)));
    ({ api, worker } = await stack('e2e-models', root));
    speciesVersion = (JSON.parse(await readFile(join(root, 'species', '1', 'manifest.json'), 'utf8')) as { version: string }).version;
  });

  test('the species model answers records through /models/species/predict, by output name', async () => {
    const setosa = await postJson(`${api.url}/models/species/predict`, { measurements: [5.1, 3.5, 1.4, 0.2] });
    assert.equal(setosa.status, 200, JSON.stringify(setosa.body));
    assert.equal(setosa.body.model_name, 'species');
    assert.equal(setosa.body.model_version, speciesVersion);
    assert.equal(setosa.body.label, 'setosa');
    assert.deepEqual(Object.keys(setosa.body.probabilities), ['setosa', 'versicolor', 'virginica']);
    const sum = Object.values(setosa.body.probabilities as Record<string, number>).reduce((a, b) => a + b, 0);
    assert.ok(Math.abs(sum - 1) < 1e-5, `probabilities sum to ${sum}`);

    const batch = await postJson(`${api.url}/models/species/versions/1/predict/batch`, {
      records: [{ measurements: [6.7, 3.0, 5.2, 2.3] }, { measurements: [5.1, 3.5, 1.4, 0.2] }],
    });
    assert.equal(batch.status, 200, JSON.stringify(batch.body));
    assert.deepEqual(
      batch.body.results.map((r: { label: string }) => r.label),
      ['virginica', 'setosa'],
    );
    assert.equal(batch.body.model_name, 'species');
    assert.equal(batch.body.model_version, speciesVersion);
    assert.equal(typeof batch.body.latency_ms, 'number');
    assert.deepEqual(batch.body.results[1], { label: setosa.body.label, probabilities: setosa.body.probabilities });
  });

  test('a bare model.onnx of every input type, dropped in while serving, is picked up by the poll and served', async () => {
    assert.equal((await postJson(`${api.url}/models/alltypes/predict`, {})).status, 404, 'not there yet');
    await writeVersion(root, 'alltypes', 1, allTypesGraph());
    const record = { f32: [0.5, 1.5, 2], f64: 0.25, i64: 7, i32: [-3, 4], flag: true, word: 'héllo' };
    // MODEL_POLL_SECONDS=1: a few polls' worth of deadline on a loaded machine, no restart.
    const first = await waitFor(
      async () => {
        const res = await postJson(`${api.url}/models/alltypes/predict`, record);
        return res.status === 200 ? res : undefined;
      },
      { timeoutMs: 15_000, what: 'alltypes served' },
    );
    assert.equal(first.body.model_name, 'alltypes');
    assert.equal(first.body.model_version, '1');
    assert.deepEqual(first.body.f32_out, [0.5, 1.5, 2]);
    assert.equal(first.body.f64_out, 0.25);
    assert.equal(first.body.i64_out, 7);
    assert.deepEqual(first.body.i32_out, [-3, 4]);
    assert.equal(first.body.flag_out, true);
    assert.equal(first.body.word_out, 'héllo');
    assert.ok(Math.abs(first.body.numeric_sum - (0.5 + 1.5 + 2 + 0.25 + 7 - 3 + 4 + 1)) < 1e-5);

    const records = [record, { ...record, f64: -1, flag: false, word: 'b' }, { ...record, i64: 100, word: 'c' }];
    const batch = await postJson(`${api.url}/models/alltypes/predict/batch`, { records });
    assert.equal(batch.status, 200, JSON.stringify(batch.body));
    assert.deepEqual(
      batch.body.results.map((r: { word_out: string }) => r.word_out),
      ['héllo', 'b', 'c'],
    );
    assert.deepEqual(
      batch.body.results.map((r: { flag_out: boolean }) => r.flag_out),
      [true, false, true],
    );
    assert.deepEqual(
      batch.body.results.map((r: { i64_out: number }) => r.i64_out),
      [7, 7, 100],
    );

    const model = await request(`${api.url}/models/alltypes`);
    assert.equal(model.status, 200);
    assert.deepEqual(
      model.body.versions[0].signature.inputs.map((i: { name: string; type: string }) => `${i.name}:${i.type}`),
      ['f32:float32', 'f64:float64', 'i64:int64', 'i32:int32', 'flag:bool', 'word:string'],
    );
  });

  test('a wrong, missing or extra field is a 400 naming it, and a batch names the record', async () => {
    await waitFor(async () => (await request(`${api.url}/models/alltypes`)).status === 200, { timeoutMs: 15_000, what: 'alltypes listed' });
    const good = { f32: [0.5, 1.5, 2], f64: 0.25, i64: 7, i32: [-3, 4], flag: true, word: 'w' };
    const { word: _word, ...missing } = good;
    const cases: [unknown, string][] = [
      [{ ...good, flag: 1 }, 'flag'],
      [missing, 'word'],
      [{ ...good, extra: 1 }, 'extra'],
      [{ ...good, f32: [1, 2] }, 'f32'],
      [{ ...good, i32: [1.5, 2] }, 'i32.0'],
    ];
    for (const [body, path] of cases) {
      const res = await postJson(`${api.url}/models/alltypes/predict`, body);
      assert.equal(res.status, 400, JSON.stringify(res.body));
      assert.equal(res.body.error.code, 'validation_error');
      assert.ok(
        res.body.error.details.some((d: { path: string }) => d.path === path),
        `${path}: ${JSON.stringify(res.body)}`,
      );
    }
    const batch = await postJson(`${api.url}/models/alltypes/predict/batch`, { records: [good, { ...good, word: 3 }] });
    assert.equal(batch.status, 400);
    assert.ok(
      batch.body.error.details.some((d: { path: string }) => d.path === 'records.1.word'),
      JSON.stringify(batch.body),
    );
  });

  test('an unknown model or version is 404 model_not_found at once', async () => {
    for (const path of ['/models/nope/predict', '/models/species/versions/9/predict', '/models/nope']) {
      const res = path.endsWith('predict') ? await postJson(`${api.url}${path}`, { measurements: [1, 2, 3, 4] }) : await request(`${api.url}${path}`);
      assert.equal(res.status, 404, `${path}: ${JSON.stringify(res.body)}`);
      assert.equal(res.body.error.code, 'model_not_found');
    }
  });

  test('a corrupt version beside a good one: the good one serves, the corrupt one is listed with its reason', async () => {
    const res = await postJson(`${api.url}/models/mixed/predict`, { x: [2, 1] });
    assert.equal(res.status, 200, JSON.stringify(res.body));
    assert.equal(res.body.model_version, '1');
    assert.equal(res.body.label, 0);

    const model = await request(`${api.url}/models/mixed`);
    const v2 = model.body.versions.find((v: { version: number }) => v.version === 2);
    assert.equal(v2.state, 'failed');
    assert.match(v2.reason, /^model\.onnx: is not a loadable ONNX model/);
    assert.equal(model.body.default_version, 1);
    const pinned = await postJson(`${api.url}/models/mixed/versions/2/predict`, { x: [2, 1] });
    assert.equal(pinned.status, 503);
    assert.equal(pinned.body.error.code, 'model_unavailable');
    // Callers get the model, the version and the reason; where the server keeps its files only the log says.
    assert.match(pinned.body.error.message, /Model mixed version 2 cannot be served \(failed: model\.onnx: is not a loadable ONNX model/);
    for (const body of [model.body, pinned.body]) assert.ok(!JSON.stringify(body).includes(root), `a path in ${JSON.stringify(body)}`);
    assert.equal(await readMetric(worker.url, 'scoring_model_load_failures', { model_name: 'mixed', model_version: '2' }), 1);
    assert.match(worker.output(), /"model_name":"mixed","model_version":2,"reason":"[^"]*mixed\/2\/model\.onnx: is not a loadable ONNX model/);
  });

  test('GET /models and /ready list what the live workers hold', async () => {
    const list = await request(`${api.url}/models`);
    assert.equal(list.status, 200);
    const names = list.body.models.map((m: { name: string }) => m.name);
    for (const name of ['fraud', 'species', 'mixed']) assert.ok(names.includes(name), names.join(','));
    const fraud = list.body.models.find((m: { name: string }) => m.name === 'fraud');
    assert.equal(fraud.versions[0].state, 'loaded');
    assert.equal(fraud.versions[0].workers, 1);
    const ready = await request(`${api.url}/ready`);
    assert.deepEqual(ready.body.models.species, [1]);
    assert.deepEqual(ready.body.models.mixed, [1]);
  });

  test('a version directory removed while it serves: callers are answered, later calls move to the new latest', async (t) => {
    await writeVersion(
      root,
      'gone',
      1,
      softmaxGraph(
        [
          [1, 0],
          [0, 1],
        ],
        [0, 0],
      ),
    );
    await writeVersion(
      root,
      'gone',
      2,
      softmaxGraph(
        [
          [0, 1],
          [1, 0],
        ],
        [0, 0],
      ),
    );
    const call = () => postJson(`${api.url}/models/gone/predict`, { x: [2, 1] });
    await waitFor(async () => (await call()).body.model_version === '2', { timeoutMs: 15_000, what: 'gone/2 serving' });

    let removedAt = Infinity;
    const removal = (async () => {
      await new Promise((r) => setTimeout(r, 1000));
      // Before the rm: the worker may see the directory going while rm still runs.
      removedAt = Date.now();
      await rm(join(root, 'gone', '2'), { recursive: true, force: true });
    })();
    const responses = await load(8, Date.now() + 6000, call);
    await removal;
    const statuses = countBy(responses, (r) => `${r.status} ${r.body.model_version ?? r.body.error?.code}`);
    t.diagnostic(`replies: ${statuses}`);
    // In flight when it went: answered by version 2; after: a 404 from the version that left, or version 1.
    for (const r of responses) {
      const ok = (r.status === 200 && ['1', '2'].includes(r.body.model_version)) || (r.status === 404 && r.body.error.code === 'model_not_found');
      assert.ok(ok, `unexpected answer ${r.status} ${JSON.stringify(r.body)}; all: ${statuses}`);
    }
    // Version 1 scores [2,1] as class 0, version 2 as class 1: each reply's label matches the version it names.
    for (const r of responses.filter((x) => x.status === 200)) assert.equal(r.body.label, r.body.model_version === '1' ? 0 : 1);
    // Settled: a call sent after a reply named version 1 reached the api once it had moved `latest`
    // to 1, and it does not move back. Calls it had sent to version 2 before may still be answered
    // (by 2, or 404 once the worker let 2 go): the order of events decides, not a delay.
    const firstV1 = Math.min(...responses.filter((r) => r.status === 200 && r.body.model_version === '1').map((r) => r.at));
    assert.ok(firstV1 > removedAt, 'no reply names version 1 before version 2 was removed');
    const settled = responses.filter((r) => r.sentAt > firstV1);
    assert.ok(settled.length > 0, statuses);
    assert.ok(
      settled.every((r) => r.status === 200 && r.body.model_version === '1'),
      `after the removal settled: ${statuses}`,
    );
    const pinned = await postJson(`${api.url}/models/gone/versions/2/predict`, { x: [2, 1] });
    assert.equal(pinned.status, 404);
    assert.equal(pinned.body.error.code, 'model_not_found');
  });
});

describe('a model no live worker holds', () => {
  test('is 503 model_unavailable at once, while an unknown one is 404', async () => {
    const root = await repository(['fraud', 'species']);
    const { api } = await stack('e2e-models-unheld', root, { MODELS: 'fraud' });
    const res = await postJson(`${api.url}/models/species/predict?timeout_ms=10000`, { measurements: [1, 2, 3, 4] });
    assert.equal(res.status, 503, JSON.stringify(res.body));
    assert.equal(res.body.error.code, 'model_unavailable');
    assert.ok(res.ms < 2000, `answered after ${res.ms} ms, not at the timeout`);
    const listed = await request(`${api.url}/models/species`);
    assert.equal(listed.body.versions[0].state, 'unavailable');
    assert.equal((await postJson(`${api.url}/models/nope/predict`, {})).status, 404);
    assert.equal((await postJson(`${api.url}/predict`, generateFraudRecords(1, 1)[0])).status, 200);
  });
});

describe("fraud's champion moves under load", () => {
  // The figures: 64 connections for 20 s, the alias moved at 10 s.
  const CLIENTS = 64;
  const DURATION_MS = 20_000;
  const SWITCH_AT_MS = 10_000;

  test('0 errors, every reply names the version that scored it, none names the old one once settled', async (t) => {
    const root = await repository(['fraud']);
    // In place of the committed fraud/2 (XGBoost): a version holds one model file.
    await rm(join(root, 'fraud', '2'), { recursive: true, force: true });
    await cp(join(root, 'fraud', '1'), join(root, 'fraud', '2'), { recursive: true });
    const manifestFile = join(root, 'fraud', '2', 'manifest.json');
    const manifest = JSON.parse(await readFile(manifestFile, 'utf8')) as { version: string };
    const v1 = manifest.version;
    const v2 = `${v1}-champion-2`;
    await writeFile(manifestFile, JSON.stringify({ ...manifest, version: v2 }, null, 2));
    const aliases = join(root, 'fraud', 'aliases.json');
    await writeFile(aliases, JSON.stringify({ champion: '1' }));
    const { api, worker } = await stack('e2e-models-switch', root, { MODEL_POLL_SECONDS: '0' });

    const records = generateFraudRecords(5, 256);
    let i = 0;
    const start = Date.now();
    let switchedAt = Infinity;
    const mover = (async () => {
      await new Promise((r) => setTimeout(r, SWITCH_AT_MS));
      await writeFile(`${aliases}.tmp`, JSON.stringify({ champion: '2' }));
      await rename(`${aliases}.tmp`, aliases);
      switchedAt = Date.now();
      worker.proc.kill('SIGHUP');
    })();
    const responses = await load(CLIENTS, start + DURATION_MS, () => postJson(`${api.url}/predict`, records[i++ % records.length]));
    await mover;

    const summary = countBy(responses, (r) => `${r.status} ${r.body.model_version ?? r.body.error?.code}`);
    t.diagnostic(`replies: ${summary}`);
    assert.equal(responses.filter((r) => r.status !== 200).length, 0, summary);
    assert.ok(
      responses.every((r) => r.body.model_version === v1 || r.body.model_version === v2),
      summary,
    );
    const firstV2 = Math.min(...responses.filter((r) => r.body.model_version === v2).map((r) => r.at));
    const lastV1 = Math.max(...responses.filter((r) => r.body.model_version === v1).map((r) => r.at));
    t.diagnostic(
      `alias moved at ${switchedAt - start} ms; first ${v2} reply ${firstV2 - switchedAt} ms later; last ${v1} reply ${lastV1 - switchedAt} ms after the move`,
    );
    assert.ok(firstV2 >= switchedAt, 'no reply names version 2 before the alias moved');
    assert.ok(
      responses.some((r) => r.at < switchedAt && r.body.model_version === v1),
      summary,
    );
    // Settled: a call sent after a reply named version 2 reached the api after it had resolved
    // the alias to 2, and the api never resolves it back. Calls it resolved to 1 before the move
    // may still be answered later, by version 1 (under load, up to their timeout): only the order
    // of events decides which is which, not a delay.
    const settled = responses.filter((r) => r.sentAt > firstV2);
    assert.ok(settled.length > 0, summary);
    assert.ok(
      settled.every((r) => r.body.model_version === v2),
      `a reply named ${v1} after the switch settled: ${summary}`,
    );
  });
});
