// `npm start`: a whole local stack in one terminal — the api, one worker, and a private
// redis-server when nothing answers at REDIS_URL. Ctrl-C or SIGTERM drains both processes
// (SIGTERM), then stops the private Redis and removes its folder; exit 0. A process that
// stops by itself stops the stack with a non-zero code. Nothing is left running either way.
import { spawn, type ChildProcess } from 'node:child_process';
import { once } from 'node:events';
import { mkdtempSync, rmSync } from 'node:fs';
import { createServer } from 'node:net';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { serviceArgs } from '../src/shared/node-args.ts';
import { redisAnswers } from '../src/shared/redis.ts';
import { loadConfigOrExit } from '../src/shared/config.ts';
import { listenFailure } from '../src/shared/listen-error.ts';
import { PRETTY_OPTIONS } from '../src/shared/logger.ts';
import PinoPretty from 'pino-pretty';

/** How long a private redis-server may take to answer its first PING. */
const REDIS_START_MS = 10_000;

/** Resolves with the listen error when host:port cannot be had, undefined when it is free. */
function portProblem(host: string, port: number): Promise<NodeJS.ErrnoException | undefined> {
  if (port === 0) return Promise.resolve(undefined);
  return new Promise((resolve) => {
    const server = createServer();
    server.once('error', (err: NodeJS.ErrnoException) => resolve(err));
    server.listen(port, host, () => server.close(() => resolve(undefined)));
  });
}

function freePort(): Promise<number> {
  return new Promise((resolve, reject) => {
    const s = createServer().listen(0, '127.0.0.1', () => {
      const address = s.address();
      s.close(() => (typeof address === 'object' && address ? resolve(address.port) : reject(new Error('no port'))));
    });
  });
}

// The children write JSON lines (their stdout is a pipe); on a terminal they are shown as pino-pretty shows them.
const pretty = process.stdout.isTTY ? PinoPretty.prettyFactory(PRETTY_OPTIONS) : undefined;

function prefixed(name: string, child: ChildProcess): void {
  for (const stream of [child.stdout, child.stderr]) {
    stream?.on('data', (chunk: Buffer) => {
      for (const line of chunk.toString().split('\n')) {
        if (!line) continue;
        const text = pretty && line.startsWith('{"level"') ? pretty(line).trimEnd() : line;
        process.stdout.write(`[${name}] ${text}\n`);
      }
    });
  }
}

const running = (c: ChildProcess) => c.exitCode === null && c.signalCode === null;

/** SIGTERM, then SIGKILL if it has not exited within graceMs. */
async function terminate(child: ChildProcess, graceMs: number): Promise<void> {
  if (!running(child)) return;
  const exited = once(child, 'exit');
  child.kill('SIGTERM');
  const timer = setTimeout(() => child.kill('SIGKILL'), graceMs);
  await exited;
  clearTimeout(timer);
}

const config = loadConfigOrExit();

// A taken port is found before anything starts, so failing leaves nothing behind.
for (const [role, variable, host, port] of [
  ['api', 'PORT', config.api.host, config.api.port],
  ['worker', 'WORKER_PORT', '0.0.0.0', config.worker.port],
] as const) {
  const problem = await portProblem(host, port);
  if (problem) {
    console.error(listenFailure(role, variable, host, port, problem));
    process.exit(1);
  }
}

const env: NodeJS.ProcessEnv = { ...process.env };
const children: { name: string; child: ChildProcess }[] = [];
let redisServer: ChildProcess | undefined;
let redisDir: string | undefined;
let stopping: Promise<never> | undefined;

/** Stops the api and the worker (draining), then the private Redis; removes its folder; exits. */
function stop(code: number): Promise<never> {
  stopping ??= (async () => {
    const grace = config.api.shutdownTimeoutMs + 5000;
    await Promise.all(children.map(({ child }) => terminate(child, grace)));
    if (redisServer) await terminate(redisServer, 5000);
    if (redisDir) rmSync(redisDir, { recursive: true, force: true });
    process.exit(code);
  })();
  return stopping;
}
for (const signal of ['SIGINT', 'SIGTERM', 'SIGHUP'] as const) process.once(signal, () => void stop(0));
// `npm start` runs this under `sh -c`: a SIGTERM sent to npm ends npm and that shell, never
// reaching here. Orphaned (re-parented), the stack stops as if it had been sent SIGTERM itself.
const parentPid = process.ppid;
setInterval(() => {
  if (process.ppid !== parentPid) void stop(0);
}, 250).unref();
// A reader that went away (`npm start | head`, a closed terminal) must not crash the stop.
process.stdout.on('error', () => undefined);
// Last resort, should this script die some other way: nothing it started outlives it.
process.on('exit', () => {
  for (const child of [...children.map((c) => c.child), redisServer]) if (child && running(child)) child.kill('SIGKILL');
  if (redisDir) rmSync(redisDir, { recursive: true, force: true });
});

if (!(await redisAnswers(config.redis.url))) {
  const port = await freePort();
  redisDir = mkdtempSync(join(tmpdir(), 'scoring-redis-'));
  redisServer = spawn('redis-server', ['--port', String(port), '--bind', '127.0.0.1', '--save', '', '--appendonly', 'no', '--dir', redisDir], {
    stdio: 'ignore',
    // Its own process group: a terminal's Ctrl-C reaches only this script, which stops things in order.
    detached: true,
  });
  env.REDIS_URL = `redis://127.0.0.1:${port}`;
  const started = await new Promise<Error | undefined>((resolve) => {
    redisServer!.once('error', resolve);
    redisServer!.once('exit', (code) => resolve(new Error(`redis-server exited with code ${code}`)));
    const deadline = Date.now() + REDIS_START_MS;
    const probe = async () => {
      if (await redisAnswers(env.REDIS_URL!)) resolve(undefined);
      else if (Date.now() > deadline) resolve(new Error(`no answer within ${REDIS_START_MS} ms`));
      else setTimeout(() => void probe(), 50);
    };
    void probe();
  });
  if (started) {
    console.error(
      `No Redis answers at ${config.redis.url} and redis-server could not be started (${started.message}).\n` +
        '  Install it (Debian/Ubuntu: apt-get install redis-server) or set REDIS_URL to a Redis >= 6.2.',
    );
    await stop(1);
  }
  console.log(`[stack] nothing answered at ${config.redis.url}: started a private redis-server at ${env.REDIS_URL}`);
}

if (!stopping) {
  for (const name of ['api', 'worker'] as const) {
    const child = spawn(process.execPath, serviceArgs(name), { env, stdio: ['ignore', 'pipe', 'pipe'], detached: true });
    prefixed(name, child);
    children.push({ name, child });
    child.once('exit', (code, signal) => {
      if (stopping) return;
      console.error(`[stack] the ${name} stopped (${signal ?? `exit code ${code}`}); stopping the stack`);
      void stop(code || 1);
    });
  }
  console.log(`[stack] api on http://127.0.0.1:${config.api.port} (docs at /docs), worker ops port ${config.worker.port}. Ctrl-C stops both.`);
}
