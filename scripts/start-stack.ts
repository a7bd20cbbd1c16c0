// `npm start`: a whole local stack in one terminal — the api, one worker, and a private
// redis-server when nothing answers at REDIS_URL. Ctrl-C drains both processes (SIGTERM),
// then stops the private Redis.
import { spawn, type ChildProcess } from 'node:child_process';
import { serviceArgs } from '../src/shared/node-args.ts';
import { mkdtempSync, rmSync } from 'node:fs';
import { createServer } from 'node:net';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { redisAnswers } from '../src/shared/redis.ts';
import { loadConfigOrExit } from '../src/shared/config.ts';

function freePort(): Promise<number> {
  return new Promise((resolve, reject) => {
    const s = createServer().listen(0, '127.0.0.1', () => {
      const address = s.address();
      s.close(() => (typeof address === 'object' && address ? resolve(address.port) : reject(new Error('no port'))));
    });
  });
}

function prefixed(name: string, child: ChildProcess): void {
  for (const stream of [child.stdout, child.stderr]) {
    stream?.on('data', (chunk: Buffer) => {
      for (const line of chunk.toString().split('\n')) if (line) process.stdout.write(`[${name}] ${line}\n`);
    });
  }
}

const config = loadConfigOrExit();

const env: NodeJS.ProcessEnv = { ...process.env };
let redisServer: ChildProcess | undefined;
let redisDir: string | undefined;
if (!(await redisAnswers(config.redis.url))) {
  const port = await freePort();
  redisDir = mkdtempSync(join(tmpdir(), 'scoring-redis-'));
  redisServer = spawn('redis-server', ['--port', String(port), '--bind', '127.0.0.1', '--save', '', '--appendonly', 'no', '--dir', redisDir], {
    stdio: 'ignore',
  });
  const failed = await new Promise<Error | undefined>((resolve) => {
    redisServer!.once('error', resolve);
    setTimeout(() => resolve(undefined), 300);
  });
  if (failed) {
    console.error(
      `No Redis answers at ${config.redis.url} and redis-server could not be started (${failed.message}).\n` +
        '  Install it (Debian/Ubuntu: apt-get install redis-server) or set REDIS_URL to a Redis >= 6.2.',
    );
    process.exit(1);
  }
  env.REDIS_URL = `redis://127.0.0.1:${port}`;
  console.log(`[stack] nothing answered at ${config.redis.url}: started a private redis-server at ${env.REDIS_URL}`);
}

const children = (['api', 'worker'] as const).map((kind) => {
  const child = spawn(process.execPath, serviceArgs(kind), { env, stdio: ['ignore', 'pipe', 'pipe'] });
  prefixed(kind, child);
  return child;
});
console.log(`[stack] api on http://127.0.0.1:${config.api.port} (docs at /docs), worker ops port ${config.worker.port}. Ctrl-C stops both.`);

let stopping = false;
async function stop(code: number): Promise<never> {
  if (!stopping) {
    stopping = true;
    await Promise.all(
      children.filter((c) => c.exitCode === null && c.signalCode === null).map((c) => new Promise((r) => c.once('exit', r).kill('SIGTERM'))),
    );
    redisServer?.kill('SIGTERM');
    if (redisDir) rmSync(redisDir, { recursive: true, force: true });
  }
  process.exit(code);
}
for (const child of children) child.once('exit', (code) => void stop(stopping ? 0 : (code ?? 1) || 1));
process.once('SIGINT', () => void stop(0));
process.once('SIGTERM', () => void stop(0));
