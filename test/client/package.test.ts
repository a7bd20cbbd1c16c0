// The client and the CLI as a team gets them: packages/client packed by npm (its prepack builds
// dist/ with tsc), the tarball installed into an empty folder, then on Node 22 (the oldest the
// package supports) and on the service's Node 24: `npx scoring --help`, and a call through the
// imported client. tsc type-checks a file that imports the client, with the package's own types.
import { test, before, after } from 'node:test';
import assert from 'node:assert/strict';
import { execFile } from 'node:child_process';
import { mkdtempSync, readFileSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { dirname, join } from 'node:path';
import { fileURLToPath } from 'node:url';
import { promisify } from 'node:util';
import { freePort } from '../helpers/ports.ts';

const run = promisify(execFile);
const ROOT = fileURLToPath(new URL('../..', import.meta.url));
const PACKAGE_DIR = join(ROOT, 'packages/client');
/** The newest Node 22 when this was written; engines says >=22, so 22 is what must keep working. */
const NODE_22 = '22.23.5';

type PackedFile = { path: string };
type Manifest = { name: string; version: string; dependencies: Record<string, string> };
const readJson = <T>(path: string): T => JSON.parse(readFileSync(path, 'utf8')) as T;

let dir: string;
let packed: PackedFile[];
let tarball: string;

before(async () => {
  dir = mkdtempSync(join(tmpdir(), 'scoring-client-package-'));
  const { stdout } = await run('npm', ['pack', '--json', '--pack-destination', dir], { cwd: PACKAGE_DIR });
  const [result] = JSON.parse(stdout) as { filename: string; files: PackedFile[] }[];
  packed = result!.files;
  tarball = join(dir, result!.filename);
  writeFileSync(join(dir, 'package.json'), JSON.stringify({ name: 'app', private: true, type: 'module' }));
  // Its dependencies and @types/node are in the npm cache after `npm ci`: no download needed.
  const typesNode = readJson<{ version: string }>(join(ROOT, 'node_modules/@types/node/package.json')).version;
  await run('npm', ['install', tarball, `@types/node@${typesNode}`, '--prefer-offline', '--no-audit', '--no-fund', '--loglevel=error'], {
    cwd: dir,
  });
});

after(() => rmSync(dir, { recursive: true, force: true }));

test('the package carries the client, the CLI and the contract they import, and declares what they need', () => {
  const paths = packed.map((f) => f.path).sort();
  // No service code (config, Redis, queues, api, worker) and no TypeScript sources but .d.ts.
  const outside = paths.filter(
    (p) => !/^(package\.json|README\.md|dist\/(client|cli)\/[^/]+|dist\/shared\/(errors\.(js|d\.ts)|schemas\/[^/]+))$/.test(p),
  );
  assert.deepEqual(outside, []);
  assert.deepEqual(
    paths.filter((p) => p.endsWith('.ts') && !p.endsWith('.d.ts')),
    [],
  );
  assert.ok(paths.includes('dist/cli/main.js') && paths.includes('dist/client/index.d.ts'));
  // The same ranges as the service's own package.json, so the two never drift apart.
  const service = readJson<Manifest>(join(ROOT, 'package.json'));
  const client = readJson<Manifest>(join(PACKAGE_DIR, 'package.json'));
  for (const [name, range] of Object.entries(client.dependencies)) assert.equal(range, service.dependencies[name], name);
  assert.equal(client.version, service.version);
});

async function nodeBin(version: 22 | 24): Promise<string> {
  if (version === 24) return dirname(process.execPath);
  // Fetched into .tools/ once, from the npm registry, as ensure-node.sh fetches Node 24.
  return (await run(join(ROOT, 'scripts/fetch-node.sh'), [NODE_22])).stdout.trim();
}

for (const version of [22, 24] as const) {
  test(`on Node ${version}: npx scoring --help, and the imported client calls the service`, async () => {
    const bin = await nodeBin(version);
    // npx and the bin's `#!/usr/bin/env node` take the `node` first on PATH.
    const env = { ...process.env, PATH: `${bin}:${process.env.PATH ?? ''}` };
    const help = await run('npx', ['--offline', 'scoring', '--help'], { cwd: dir, env });
    assert.match(help.stdout, /Usage: scoring/);
    assert.match(help.stdout, /Exit codes: 0 ok/);

    // Nothing listens on the port: the client must say so as UnreachableError, through its real fetch path.
    const url = `http://127.0.0.1:${await freePort()}`;
    const script = [
      "import { ScoringClient, UnreachableError } from 'scoring-client';",
      `const client = new ScoringClient({ url: '${url}' });`,
      'const error = await client.jobStatus("j1").then(() => undefined, (e) => e);',
      'console.log(process.versions.node, error instanceof UnreachableError);',
    ].join('\n');
    const call = await run(join(bin, 'node'), ['--input-type=module', '-e', script], { cwd: dir, env });
    const [node, unreachable] = call.stdout.trim().split(' ');
    assert.equal(node!.split('.')[0], String(version));
    assert.equal(unreachable, 'true');
  });
}

test('a TypeScript file that imports the client type-checks against the installed package', async () => {
  writeFileSync(
    join(dir, 'tsconfig.json'),
    JSON.stringify({
      compilerOptions: { module: 'nodenext', target: 'es2022', strict: true, noEmit: true, types: ['node'], skipLibCheck: false },
      files: ['use-client.ts'],
    }),
  );
  writeFileSync(
    join(dir, 'use-client.ts'),
    [
      "import { ScoringClient, ScoringError, type FraudRecord, type JobStatus, type Prediction } from 'scoring-client';",
      "const client = new ScoringClient({ url: 'http://127.0.0.1:8080', apiKey: 'k' });",
      'export async function score(record: FraudRecord): Promise<Prediction["decision"]> {',
      '  return (await client.predict(record)).decision;',
      '}',
      'export async function status(id: string): Promise<JobStatus["status"] | string> {',
      '  try {',
      '    return (await client.jobStatus(id)).status;',
      '  } catch (error) {',
      '    if (error instanceof ScoringError) return error.code;',
      '    throw error;',
      '  }',
      '}',
      // Were the package's types missing or `any`, this line would not be an error, and the directive would be.
      '// @ts-expect-error a record is not a string',
      "export const wrong = client.predict('not a record');",
    ].join('\n'),
  );
  const tsc = join(ROOT, 'node_modules/typescript/bin/tsc');
  const checked = await run(process.execPath, [tsc, '-p', dir]).then(
    () => 'ok',
    (e: { stdout: string }) => e.stdout,
  );
  assert.equal(checked, 'ok');
});
