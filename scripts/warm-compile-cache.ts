// Fills Node's compile cache (NODE_COMPILE_CACHE) for one role by starting it as it is started for
// real (serviceArgs: the same V8 flags, which key the cache, and the same preload), waiting for
// its /health, and stopping it. A later start then compiles nothing: above all it never loads the
// TypeScript stripper, a WebAssembly build of swc that stays resident once loaded (measured:
// ~20 MB of the api's idle RSS). The images run this at build time; ./dev shares one cache
// directory across runs, so the first start warms it.
// Usage: NODE_COMPILE_CACHE=dir node scripts/warm-compile-cache.ts api|worker
import { spawn } from 'node:child_process';
import { once } from 'node:events';
import { serviceArgs } from '../src/shared/node-args.ts';

const role = process.argv[2];
if (role !== 'api' && role !== 'worker') {
  console.error('usage: node scripts/warm-compile-cache.ts api|worker');
  process.exit(2);
}
if (!process.env.NODE_COMPILE_CACHE) {
  console.error('NODE_COMPILE_CACHE is not set: nothing to warm');
  process.exit(2);
}
const PORT = role === 'api' ? 18_181 : 18_182;
// No Redis is needed: the process starts, serves /health and waits for Redis, which is all it compiles.
const env = {
  ...process.env,
  LOG_LEVEL: 'error',
  HOST: '127.0.0.1',
  PORT: String(PORT),
  WORKER_PORT: String(PORT),
  GRPC_PORT: '0',
  SHUTDOWN_TIMEOUT_MS: '1000',
};
const child = spawn(process.execPath, serviceArgs(role), { env, stdio: ['ignore', 'inherit', 'inherit'] });
const deadline = Date.now() + 60_000;
for (;;) {
  if (child.exitCode !== null) throw new Error(`the ${role} exited with ${child.exitCode} before it was healthy`);
  if (Date.now() > deadline) throw new Error(`the ${role} was not healthy within 60 s`);
  const ok = await fetch(`http://127.0.0.1:${PORT}/health`).then(
    (r) => r.ok,
    () => false,
  );
  if (ok) break;
  await new Promise((r) => setTimeout(r, 200));
}
// Node writes the cache as the process exits.
child.kill('SIGTERM');
const [code] = await once(child, 'exit');
console.log(`compile cache warmed by the ${role} (exit ${code}) in ${process.env.NODE_COMPILE_CACHE}`);
