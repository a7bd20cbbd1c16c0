// Real api and worker processes for end-to-end tests, started the way `npm run api` and
// `npm run worker` start them, each on a free port, and stopped or killed on demand.
import { spawn, type ChildProcess } from 'node:child_process';
import { fileURLToPath } from 'node:url';
import { freePort } from './ports.ts';
import { waitFor } from './wait.ts';
import { serviceArgs } from '../../src/shared/node-args.ts';

const ROOT = fileURLToPath(new URL('../..', import.meta.url));

/**
 * Processes started here that have not exited. A file that starts several at once
 * (`[api, worker] = await Promise.all([...])`) and sees one fail never learns of the others, and
 * its after() cannot stop them: they are killed when the file's process exits (the test runner
 * runs with --test-force-exit, so they cannot hold it open either).
 */
const running = new Set<ChildProcess>();
process.once('exit', () => {
  for (const proc of running) proc.kill('SIGKILL');
});

export type ServiceProcess = {
  proc: ChildProcess;
  port: number;
  url: string;
  /** Everything the process wrote, for assertions and for failure messages. */
  output: () => string;
  /** Sends a signal and resolves with the exit code once the process has exited. */
  stop: (signal?: NodeJS.Signals) => Promise<number | null>;
};

async function startProcess(kind: 'api' | 'worker', env: Record<string, string>, readyPath: string): Promise<ServiceProcess> {
  const portVar = kind === 'api' ? 'PORT' : 'WORKER_PORT';
  // A port given is kept, so a test can restart a process where its clients expect it.
  const port = env[portVar] ? Number(env[portVar]) : await freePort();
  // Every api serves gRPC too: a free port of its own unless the test names one, so apis started side by side do not meet on 8081.
  const grpcPort = kind === 'api' && env.GRPC_PORT === undefined ? { GRPC_PORT: String(await freePort()) } : {};
  const proc = spawn(process.execPath, serviceArgs(kind), {
    cwd: ROOT,
    env: { ...process.env, LOG_LEVEL: 'warn', OTEL_SDK_DISABLED: 'false', ...grpcPort, ...env, [portVar]: String(port) },
    stdio: ['ignore', 'pipe', 'pipe'],
  });
  let output = '';
  proc.stdout!.on('data', (d: Buffer) => (output += d.toString()));
  proc.stderr!.on('data', (d: Buffer) => (output += d.toString()));
  running.add(proc);
  const exited = new Promise<number | null>((resolve) =>
    proc.once('exit', (code) => {
      running.delete(proc);
      resolve(code);
    }),
  );
  const url = `http://127.0.0.1:${port}`;
  try {
    await waitFor(
      async () => {
        if (proc.exitCode !== null) throw new Error(`${kind} exited with ${proc.exitCode}: ${output}`);
        const res = await fetch(url + readyPath).catch(() => undefined);
        return res?.ok;
      },
      { timeoutMs: 20_000, what: `${kind} on port ${port}` },
    );
  } catch (err) {
    proc.kill('SIGKILL');
    throw new Error(`${String(err)}\n--- ${kind} output ---\n${output}`, { cause: err });
  }
  return {
    proc,
    port,
    url,
    output: () => output,
    stop: async (signal = 'SIGTERM') => {
      if (proc.exitCode === null && proc.signalCode === null) proc.kill(signal);
      return exited;
    },
  };
}

/** Resolves once the api's /ready says Redis answers, so a test's first call cannot meet a connecting api. */
export function startApi(env: Record<string, string>): Promise<ServiceProcess> {
  return startProcess('api', env, '/ready');
}

/** Resolves once the worker's ops port says it is ready (model loaded, Redis answers). */
export function startWorker(env: Record<string, string>): Promise<ServiceProcess> {
  return startProcess('worker', env, '/ready');
}

/**
 * Resolves once the process listens (/health answers), ready or not: for a process started
 * before its Redis, whose /ready is to be watched.
 */
export function startListening(kind: 'api' | 'worker', env: Record<string, string>): Promise<ServiceProcess> {
  return startProcess(kind, env, '/health');
}
