// The api image carries no onnxruntime-node (Dockerfile.api removes it), so the api must never
// load it. Rather than trust a reading of the sources, the real processes are started with a
// resolve hook that logs every module they load, by import or require, until they serve.
// The worker is the control: it must be seen loading onnxruntime-node.
import { test } from 'node:test';
import assert from 'node:assert/strict';
import { spawn } from 'node:child_process';
import { mkdtempSync, readFileSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { fileURLToPath } from 'node:url';
import { serviceArgs } from '../../src/shared/node-args.ts';
import { freePort } from '../helpers/ports.ts';
import { waitFor } from '../helpers/wait.ts';

const HOOK = fileURLToPath(new URL('./fixtures/record-resolutions.ts', import.meta.url));

async function modulesLoadedBy(role: 'api' | 'worker'): Promise<{ modules: string[]; stderr: string }> {
  const dir = mkdtempSync(join(tmpdir(), 'scoring-imports-'));
  const log = join(dir, 'resolved.txt');
  const port = await freePort();
  const portVar = role === 'api' ? 'PORT' : 'WORKER_PORT';
  const proc = spawn(process.execPath, ['--import', HOOK, ...serviceArgs(role)], {
    env: { ...process.env, RESOLUTIONS_LOG: log, [portVar]: String(port), QUEUE_PREFIX: `imports-${role}`, LOG_LEVEL: 'silent' },
    stdio: ['ignore', 'ignore', 'pipe'],
  });
  let stderr = '';
  proc.stderr!.on('data', (d: Buffer) => (stderr += d.toString()));
  const exited = new Promise((r) => proc.once('exit', r));
  try {
    // Serving /health: every module of start-up has been loaded.
    await waitFor(
      async () => {
        if (proc.exitCode !== null) throw new Error(`${role} exited: ${stderr}`);
        return (await fetch(`http://127.0.0.1:${port}/health`).catch(() => undefined))?.ok;
      },
      { timeoutMs: 30_000, what: `the ${role} to serve` },
    );
    return { modules: readFileSync(log, 'utf8').split('\n').filter(Boolean), stderr };
  } finally {
    proc.kill('SIGTERM');
    await exited;
    rmSync(dir, { recursive: true, force: true });
  }
}

test('the api never loads onnxruntime-node; the worker does; neither warns at start', async () => {
  const { modules: api, stderr: apiStderr } = await modulesLoadedBy('api');
  // Node prints deprecation and other process warnings to stderr (Fastify's FSTDEP… among them).
  assert.doesNotMatch(apiStderr, /Warning|FSTDEP/);
  assert.ok(
    api.some((url) => url.includes('/node_modules/fastify/')),
    'the hook saw the api load its packages',
  );
  assert.deepEqual(
    api.filter((url) => /onnxruntime/.test(url)),
    [],
  );
  const { modules: worker, stderr: workerStderr } = await modulesLoadedBy('worker');
  assert.doesNotMatch(workerStderr, /Warning/);
  assert.ok(
    worker.some((url) => url.includes('/node_modules/onnxruntime-node/')),
    'the worker loads onnxruntime-node',
  );
});
