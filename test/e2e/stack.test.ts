// Stops that leave nothing behind: `npm start` (scripts/start-stack.ts) stopped by SIGTERM, by
// Ctrl-C, by a process of its own failing, or refused a taken port; the api and the worker on a
// taken port; and `./dev test` with a private Redis. Processes are counted in /proc before and after.
import { test, afterEach } from 'node:test';
import assert from 'node:assert/strict';
import { spawn, type ChildProcess } from 'node:child_process';
import { existsSync } from 'node:fs';
import { createServer, type Server } from 'node:net';
import { fileURLToPath } from 'node:url';
import { dirname } from 'node:path';
import { freePort } from '../helpers/ports.ts';
import { waitFor } from '../helpers/wait.ts';
import { allProcesses, descendants, isAlive, type ProcInfo } from '../helpers/proc-tree.ts';
import { serviceArgs } from '../../src/shared/node-args.ts';

const ROOT = fileURLToPath(new URL('../..', import.meta.url));

type Exit = { code: number | null; signal: NodeJS.Signals | null; stdout: string; stderr: string };

function launch(command: string, args: string[], env: Record<string, string>, detached = false) {
  const childEnv: NodeJS.ProcessEnv = { ...process.env, LOG_LEVEL: 'warn', ...env };
  // Set for this file by the test runner; a `node --test` started below would take itself for a subtest.
  delete childEnv.NODE_TEST_CONTEXT;
  const child = spawn(command, args, { cwd: ROOT, env: childEnv, stdio: ['ignore', 'pipe', 'pipe'], detached });
  let stdout = '';
  let stderr = '';
  child.stdout!.on('data', (d: Buffer) => (stdout += d.toString()));
  child.stderr!.on('data', (d: Buffer) => (stderr += d.toString()));
  const exited = new Promise<Exit>((resolve) => child.once('close', (code, signal) => resolve({ code, signal, stdout, stderr })));
  return { child, exited, output: () => stdout + stderr };
}

/** A port where nothing answers, so the stack starts a Redis of its own. */
async function stackEnv(): Promise<Record<string, string>> {
  return {
    PORT: String(await freePort()),
    WORKER_PORT: String(await freePort()),
    REDIS_URL: `redis://127.0.0.1:${await freePort()}`,
    SHUTDOWN_TIMEOUT_MS: '5000',
  };
}

const isRedis = (p: ProcInfo) => /redis-server/.test(p.argv[0] ?? '');
const isNode = (p: ProcInfo) => p.argv[0] === process.execPath;

/** Stacks started by a test, stopped after it even when an assertion failed midway. */
const stacks = new Set<ChildProcess>();
afterEach(() => {
  for (const child of stacks) {
    for (const p of descendants(child.pid!)) process.kill(p.pid, 'SIGKILL');
    child.kill('SIGKILL');
  }
  stacks.clear();
});

/** Starts the stack and waits for the api and the worker to be ready; returns what it started. */
async function startStack(env: Record<string, string>, detached = false) {
  const stack = launch(process.execPath, ['scripts/start-stack.ts'], env, detached);
  stacks.add(stack.child);
  stack.child.once('exit', () => stacks.delete(stack.child));
  await waitFor(
    async () => {
      if (stack.child.exitCode !== null) throw new Error(`the stack exited: ${stack.output()}`);
      const ready = await Promise.all(
        [env.PORT, env.WORKER_PORT].map((port) =>
          fetch(`http://127.0.0.1:${port}/ready`).then(
            (r) => r.ok,
            () => false,
          ),
        ),
      );
      return ready.every(Boolean);
    },
    { timeoutMs: 60_000, what: `the stack to be ready (${stack.output()})` },
  );
  const started = descendants(stack.child.pid!);
  const redis = started.filter(isRedis);
  assert.equal(redis.length, 1, 'one private redis-server');
  assert.equal(started.filter(isNode).length, 2, 'an api and a worker');
  const redisDir = redis[0]!.cwd!;
  assert.match(redisDir, /scoring-redis-/);
  return { stack, started, redisDir };
}

function assertNothingLeft(started: ProcInfo[], redisDir: string) {
  const alive = started.filter((p) => isAlive(p.pid));
  assert.deepEqual(
    alive.map((p) => p.argv.join(' ')),
    [],
    'every process the stack started has exited',
  );
  assert.equal(existsSync(redisDir), false, "the private Redis's folder is removed");
}

test('npm start: SIGTERM stops the api, the worker and the private Redis, removes its folder, exit 0', async () => {
  const { stack, started, redisDir } = await startStack(await stackEnv());
  stack.child.kill('SIGTERM');
  const exit = await stack.exited;
  assert.equal(exit.code, 0, stack.output());
  assertNothingLeft(started, redisDir);
});

test("npm start: Ctrl-C (SIGINT to the terminal's process group) stops everything, exit 0", async () => {
  const { stack, started, redisDir } = await startStack(await stackEnv(), true);
  process.kill(-stack.child.pid!, 'SIGINT');
  const exit = await stack.exited;
  assert.equal(exit.code, 0, stack.output());
  assertNothingLeft(started, redisDir);
});

test('npm start: a process that dies stops the stack with a non-zero code, nothing left', async () => {
  const { stack, started, redisDir } = await startStack(await stackEnv());
  const worker = started.find((p) => isNode(p) && p.argv.some((a) => a.endsWith('worker/main.ts')))!;
  process.kill(worker.pid, 'SIGKILL');
  const exit = await stack.exited;
  assert.notEqual(exit.code, 0);
  assert.match(exit.stderr, /the worker stopped \(SIGKILL\); stopping the stack/);
  assertNothingLeft(started, redisDir);
});

test('npm start: SIGTERM to npm (whose shell does not pass it on) still stops everything', async () => {
  const env = await stackEnv();
  const npm = launch('npm', ['start'], { ...env, PATH: `${dirname(process.execPath)}:${process.env.PATH ?? ''}` });
  stacks.add(npm.child);
  await waitFor(
    async () => {
      if (npm.child.exitCode !== null) throw new Error(`npm start exited: ${npm.output()}`);
      return (
        (await fetch(`http://127.0.0.1:${env.WORKER_PORT}/ready`).then(
          (r) => r.ok,
          () => false,
        )) &&
        (await fetch(`http://127.0.0.1:${env.PORT}/ready`).then(
          (r) => r.ok,
          () => false,
        ))
      );
    },
    { timeoutMs: 60_000, what: 'npm start to be ready' },
  );
  const started = descendants(npm.child.pid!);
  const redis = started.find(isRedis)!;
  assert.equal(started.filter((p) => isNode(p) && p.argv.some((a) => a.endsWith('main.ts'))).length, 2);
  npm.child.kill('SIGTERM');
  await npm.exited;
  await waitFor(() => started.every((p) => !isAlive(p.pid)), { timeoutMs: 30_000, what: 'every process npm start started to exit' });
  await waitFor(() => !existsSync(redis.cwd!), { what: "the private Redis's folder to be removed" });
});

async function holdPort(port: number): Promise<Server> {
  const server = createServer();
  await new Promise<void>((resolve) => server.listen(port, '0.0.0.0', resolve));
  return server;
}

test('npm start: a taken port is one clear line and exit 1, with nothing started', async () => {
  const env = await stackEnv();
  const server = await holdPort(Number(env.PORT));
  try {
    const stack = launch(process.execPath, ['scripts/start-stack.ts'], env);
    const exit = await stack.exited;
    assert.equal(exit.code, 1);
    assert.equal(exit.stderr, `api: port ${env.PORT} is already in use; stop what holds it or set PORT to a free port\n`);
    assert.doesNotMatch(exit.stdout, /redis-server/, 'no Redis was started');
  } finally {
    server.close();
  }
});

for (const role of ['api', 'worker'] as const) {
  test(`the ${role} on a taken port: one line naming the port and its variable, exit 1`, async () => {
    const port = await freePort();
    const server = await holdPort(port);
    const variable = role === 'api' ? 'PORT' : 'WORKER_PORT';
    try {
      // Redis is there (the default address answers in the test set-up); only the port is wrong.
      const proc = launch(process.execPath, serviceArgs(role), { [variable]: String(port), LOG_LEVEL: 'silent' });
      const exit = await proc.exited;
      assert.equal(exit.code, 1);
      assert.equal(
        exit.stderr.trim().split('\n').at(-1),
        `${role}: port ${port} is already in use; stop what holds it or set ${variable} to a free port`,
      );
      assert.doesNotMatch(exit.stderr, /\n\s+at /, 'no stack trace');
    } finally {
      server.close();
    }
  });
}

test('./dev test with a private Redis leaves no redis-server behind', async () => {
  const deadUrl = `redis://127.0.0.1:${await freePort()}`;
  const run = launch('./dev', ['test', 'test/e2e/fixtures/redis-answers.ts'], { REDIS_URL: deadUrl });
  const exit = await run.exited;
  assert.equal(exit.code, 0, run.output());
  const url = /REDIS_URL=(redis:\/\/\S+)/.exec(exit.stdout)?.[1];
  assert.ok(url && url !== deadUrl, `./dev started a private Redis: ${run.output()}`);
  const port = new URL(url).port;
  const left = allProcesses().filter((p) => isRedis(p) && p.argv.join(' ').endsWith(`:${port}`));
  assert.deepEqual(
    left.map((p) => p.argv.join(' ')),
    [],
  );
});
