// The one way to start a service process: package.json scripts, test/helpers/processes.ts and
// the bench all spawn `node ...NODE_ARGS src/<role>/main.ts`, so telemetry starts before the
// entry module loads anything it instruments.
import { fileURLToPath } from 'node:url';

const PRELOAD = fileURLToPath(new URL('./telemetry-preload.ts', import.meta.url));

/** Node arguments that come before the entry script. */
export const NODE_ARGS: readonly string[] = ['--import', PRELOAD];

/** Full argv (after the node binary) that starts the api or the worker. */
export function serviceArgs(role: 'api' | 'worker'): string[] {
  return [...NODE_ARGS, fileURLToPath(new URL(`../${role}/main.ts`, import.meta.url))];
}
