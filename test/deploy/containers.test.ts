// No Docker engine runs here, so the container files are checked for what can be checked:
// they parse, they start the processes the way package.json does, and every variable they set
// is one the config reads.
import { test } from 'node:test';
import assert from 'node:assert/strict';
import { existsSync } from 'node:fs';
import { ENV_VARIABLES } from '../../src/shared/config.ts';
import { ENV_FILE_ARG, V8_FLAGS } from '../../src/shared/node-args.ts';
import { ROOT, dockerfile, isServiceVariable, readCompose, readRepoFile as read } from '../helpers/deploy-files.ts';

const pkg = JSON.parse(read('package.json')) as { scripts: Record<string, string> };
/** The Node version ./dev and CI run, which the images pin too. */
const NODE_PINNED = /^NODE_PINNED_VERSION=(\S+)$/m.exec(read('scripts/ensure-node.sh'))?.[1];

for (const [file, script] of [
  ['Dockerfile.api', 'api'],
  ['Dockerfile.worker', 'worker'],
] as const) {
  test(`${file} builds on the pinned Node 24 slim, installs production packages, runs as non-root, starts like npm run ${script}`, () => {
    const d = dockerfile(file);
    assert.match(NODE_PINNED ?? '', /^24\.\d+\.\d+$/);
    assert.equal(d.one('FROM'), `node:${NODE_PINNED}-slim`, 'the patch version ./dev runs');
    assert.ok(d.all('RUN').some((r) => /npm ci --omit=dev/.test(r)));
    assert.match(d.one('USER'), /^node$/);
    assert.match(d.one('HEALTHCHECK'), /\/health/);
    const cmd = JSON.parse(d.one('CMD')) as string[];
    assert.equal(cmd.join(' '), pkg.scripts[script], 'CMD and the npm script start the process the same way');
    // The V8 flags the tests and the bench start the process with, no other.
    assert.deepEqual(
      cmd.filter((arg) => /^--(max|min|heap)-|^--v8-/.test(arg)),
      [...V8_FLAGS[script]],
      'the V8 flags of node-args.ts',
    );
    for (const arg of cmd.slice(1)) if (/\.ts$/.test(arg)) assert.ok(existsSync(ROOT + arg), `${arg} exists`);
    for (const env of d.all('ENV')) {
      assert.ok(ENV_VARIABLES.includes(env.split('=')[0]!) || env.startsWith('NODE_ENV') || env.startsWith('NODE_COMPILE_CACHE'), env);
    }
    for (const copied of d.all('COPY').map((c) => c.split(/\s+/)[0]!)) assert.ok(existsSync(ROOT + copied), `${copied} exists`);
  });
}

test('docker-compose.yml runs Redis with AOF on a volume, the api, and an online and a bulk pool of scalable workers', () => {
  const compose = readCompose();
  const { redis, api, 'worker-online': online, 'worker-bulk': bulk } = compose.services;
  assert.ok(redis && api && online && bulk);
  assert.ok(redis.command!.join(' ').includes('--appendonly yes'));
  assert.ok(redis.volumes!.some((v) => v.endsWith(':/data')));
  assert.equal(api.build!.dockerfile, 'Dockerfile.api');
  for (const [worker, queues] of [
    [online, 'online'],
    [bulk, 'bulk'],
  ] as const) {
    assert.equal(worker.build!.dockerfile, 'Dockerfile.worker');
    assert.equal(worker.ports, undefined, 'a worker publishes no host port, so --scale works');
    assert.equal((worker.environment as Record<string, string>).WORKER_QUEUES, queues);
  }
  for (const service of [api, online, bulk]) {
    for (const name of Object.keys(service.environment ?? {})) {
      assert.ok(isServiceVariable(name), `${name} is read by src/shared/config.ts`);
    }
  }
});

test('.env.example lists every variable the config reads', () => {
  const listed = new Set(
    read('.env.example')
      .split('\n')
      .map((l) => /^#?\s*([A-Z][A-Z0-9_]+)=/.exec(l)?.[1])
      .filter(Boolean),
  );
  for (const name of ENV_VARIABLES) assert.ok(listed.has(name), `${name} is in .env.example`);
});

test('npm run api|worker|start read .env when there is one; the images get none', () => {
  for (const script of ['api', 'worker', 'start']) assert.ok(pkg.scripts[script]!.split(' ').includes(ENV_FILE_ARG), script);
  const ignored = read('.dockerignore')
    .split('\n')
    .map((l) => l.trim());
  assert.ok(ignored.includes('.env'), '.env is in .dockerignore');
});

test('the api image carries no onnxruntime-node: removed after npm ci, in the same layer', () => {
  const runs = dockerfile('Dockerfile.api').all('RUN');
  const install = runs.find((r) => /npm ci --omit=dev/.test(r));
  assert.ok(install);
  assert.match(install, /rm -rf node_modules\/onnxruntime-node\b/);
  assert.doesNotMatch(dockerfile('Dockerfile.worker').all('RUN').join('\n'), /onnxruntime/, 'the worker keeps it');
});
