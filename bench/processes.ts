// The measured servers as real processes: api and workers started the way `npm run api` and
// `npm run worker` start them, and the in-process baseline. Each gets a free port; start()
// resolves once the process answers its readiness path and fails at once, with the process's
// own output, if it exits first. Every process started is remembered so a failing bench
// leaves none behind.
import { spawn, type ChildProcess } from 'node:child_process';
import { fileURLToPath } from 'node:url';
import { freePort } from '../test/helpers/ports.ts';
import { nodeArgs } from '../src/shared/node-args.ts';

export const ROOT = fileURLToPath(new URL('..', import.meta.url));

export type ServerKind = 'api' | 'worker' | 'baseline';

// The api and the worker start as `npm run api` / `npm run worker` start them, telemetry preload
// and V8 flags included (nodeArgs); the baseline has no telemetry to preload.
const ENTRY: Record<ServerKind, { script: string; nodeArgs: readonly string[]; portVar: string; readyPath: string }> = {
  api: { script: 'src/api/main.ts', nodeArgs: nodeArgs('api'), portVar: 'PORT', readyPath: '/health' },
  worker: { script: 'src/worker/main.ts', nodeArgs: nodeArgs('worker'), portVar: 'WORKER_PORT', readyPath: '/ready' },
  baseline: { script: 'bench/baseline-server.ts', nodeArgs: [], portVar: 'PORT', readyPath: '/health' },
};

/** Output kept per process for failure messages; the tail is what explains a crash. */
const OUTPUT_TAIL_CHARS = 16_384;
const START_TIMEOUT_MS = 60_000;
const STOP_TIMEOUT_MS = 15_000;

export type ServerProcess = {
  kind: ServerKind;
  name: string;
  pid: number;
  port: number;
  url: string;
  output: () => string;
  alive: () => boolean;
  /** SIGTERM, then SIGKILL past the deadline; resolves with the exit code. */
  stop: () => Promise<number | null>;
};

export class StartError extends Error {
  constructor(message: string) {
    super(message);
    this.name = this.constructor.name;
  }
}

const running = new Set<ChildProcess>();

export type StartOptions = { name?: string; env?: Record<string, string>; nodeArgs?: string[] };

export async function startServer(kind: ServerKind, options: StartOptions = {}): Promise<ServerProcess> {
  const entry = ENTRY[kind];
  const port = await freePort();
  const name = options.name ?? kind;
  const proc = spawn(process.execPath, [...entry.nodeArgs, ...(options.nodeArgs ?? []), entry.script], {
    cwd: ROOT,
    // An api serves gRPC too, on a free port of its own unless given one: stacks run side by side.
    env: { ...process.env, ...(kind === 'api' ? { GRPC_PORT: String(await freePort()) } : {}), ...options.env, [entry.portVar]: String(port) },
    stdio: ['ignore', 'pipe', 'pipe'],
  });
  running.add(proc);
  let output = '';
  const collect = (d: Buffer) => {
    output += d.toString();
    if (output.length > 2 * OUTPUT_TAIL_CHARS) output = output.slice(-OUTPUT_TAIL_CHARS);
  };
  proc.stdout!.on('data', collect);
  proc.stderr!.on('data', collect);
  const exited = new Promise<number | null>((resolve) =>
    proc.once('exit', (code, signal) => {
      running.delete(proc);
      resolve(code ?? (signal ? -1 : null));
    }),
  );
  const url = `http://127.0.0.1:${port}`;
  const tail = () => output.slice(-OUTPUT_TAIL_CHARS).trimEnd();

  const deadline = Date.now() + START_TIMEOUT_MS;
  for (;;) {
    if (proc.exitCode !== null || proc.signalCode !== null) {
      throw new StartError(`${name} exited with ${proc.exitCode ?? proc.signalCode} before it was ready:\n${tail()}`);
    }
    const res = await fetch(url + entry.readyPath, { signal: AbortSignal.timeout(2000) }).catch(() => undefined);
    if (res?.ok) break;
    if (Date.now() > deadline) {
      proc.kill('SIGKILL');
      throw new StartError(`${name} did not answer ${entry.readyPath} within ${START_TIMEOUT_MS} ms:\n${tail()}`);
    }
    await new Promise((r) => setTimeout(r, 50));
  }

  return {
    kind,
    name,
    pid: proc.pid!,
    port,
    url,
    output: tail,
    alive: () => proc.exitCode === null && proc.signalCode === null,
    stop: async () => {
      if (proc.exitCode !== null || proc.signalCode !== null) return exited;
      proc.kill('SIGTERM');
      const timer = setTimeout(() => proc.kill('SIGKILL'), STOP_TIMEOUT_MS);
      const code = await exited;
      clearTimeout(timer);
      return code;
    },
  };
}

/** Kills whatever is still running; for a bench that is failing or interrupted. */
export function killAll(): void {
  for (const proc of running) proc.kill('SIGKILL');
}
