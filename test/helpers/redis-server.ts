// A private redis-server for one test file: its own port and data dir, so a test can stop and
// restart it (Redis going away) without touching anyone else's Redis. Started once per file.
import { spawn, type ChildProcess } from 'node:child_process';
import { mkdtempSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { Redis } from 'ioredis';
import { freePort } from './ports.ts';
import { redisAnswers } from '../../src/shared/redis.ts';
import { waitFor } from './wait.ts';

export type TestRedis = {
  url: string;
  port: number;
  /** A plain client on the server, for assertions. */
  client: Redis;
  stop: () => Promise<void>;
  /** Starts the server again on the same port (after stop). */
  start: () => Promise<void>;
  close: () => Promise<void>;
};

export async function startTestRedis(): Promise<TestRedis> {
  const port = await freePort();
  const dir = mkdtempSync(join(tmpdir(), 'scoring-redis-'));
  const url = `redis://127.0.0.1:${port}`;
  let proc: ChildProcess | undefined;

  const start = async () => {
    proc = spawn('redis-server', ['--port', String(port), '--bind', '127.0.0.1', '--save', '', '--appendonly', 'no', '--dir', dir], {
      stdio: 'ignore',
    });
    proc.once('error', (err) => {
      throw new Error(`redis-server could not start (apt-get install redis-server): ${err.message}`);
    });
    await waitFor(() => redisAnswers(url), { what: `redis-server on port ${port}` });
  };
  const stop = async () => {
    const p = proc;
    if (!p || p.exitCode !== null) return;
    const exited = new Promise((r) => p.once('exit', r));
    p.kill('SIGKILL');
    await exited;
  };

  await start();
  const client = new Redis(url, { maxRetriesPerRequest: 1 });
  client.on('error', () => undefined);
  return {
    url,
    port,
    client,
    start,
    stop,
    close: async () => {
      client.disconnect();
      await stop();
      rmSync(dir, { recursive: true, force: true });
    },
  };
}
