// Loaded with `node --import ./src/shared/telemetry-preload.ts` (see node-args.ts), so the
// OpenTelemetry SDK starts before the entry module imports Fastify or node:http: the HTTP
// instrumentation patches http through require-in-the-middle, and that only works for modules
// loaded after it. main.ts then calls startTelemetry() again and gets this same instance.
// A bad environment is left for main.ts to report, with the message that names the variable.
import { basename, dirname } from 'node:path';
import { loadConfig } from './config.ts';
import { startTelemetry } from './telemetry.ts';

/** scoring-api for src/api/main.ts, scoring-worker for src/worker/main.ts. */
function serviceName(entry: string | undefined): string {
  const role = entry ? basename(dirname(entry)) : 'process';
  return `scoring-${role}`;
}

let config;
try {
  config = loadConfig();
} catch {
  config = undefined;
}
if (config) startTelemetry({ serviceName: serviceName(process.argv[1]), ...config.telemetry });
