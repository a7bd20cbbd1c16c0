// The one way to start a service process: package.json scripts, test/helpers/processes.ts and
// the bench all spawn `node ...NODE_ARGS src/<role>/main.ts`, so telemetry starts before the
// entry module loads anything it instruments.
import { fileURLToPath } from 'node:url';

const PRELOAD = fileURLToPath(new URL('./telemetry-preload.ts', import.meta.url));

/**
 * Reads the repository's .env (when there is one) into the environment, which keeps precedence.
 * In `npm run api|worker|start` and the images' CMD (the images hold no .env: .dockerignore), not
 * in serviceArgs: a test's or the stack's children get their environment from their parent.
 */
export const ENV_FILE_ARG = '--env-file-if-exists=.env';

/** Node arguments that come before the entry script. */
export const NODE_ARGS: readonly string[] = ['--import', PRELOAD];

/** Full argv (after the node binary) that starts the api or the worker. */
export function serviceArgs(role: 'api' | 'worker'): string[] {
  return [...NODE_ARGS, fileURLToPath(new URL(`../${role}/main.ts`, import.meta.url))];
}
