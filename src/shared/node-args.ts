// The one way to start a service process: package.json scripts, test/helpers/processes.ts and
// the bench all spawn `node ...nodeArgs(role) src/<role>/main.ts`, so telemetry starts before the
// entry module loads anything it instruments. The images' CMD and the npm scripts spell the same
// arguments (test/deploy/containers.test.ts holds them to these).
import { fileURLToPath } from 'node:url';

const PRELOAD = fileURLToPath(new URL('./telemetry-preload.ts', import.meta.url));

/**
 * Reads the repository's .env (when there is one) into the environment, which keeps precedence.
 * In `npm run api|worker|start` and the images' CMD (the images hold no .env: .dockerignore), not
 * in serviceArgs: a test's or the stack's children get their environment from their parent.
 */
export const ENV_FILE_ARG = '--env-file-if-exists=.env';

/**
 * V8 flags per role. The api: a young generation of at most 2 × 2 MB. V8 otherwise grows it to
 * 2 × 32 MB under a burst of short-lived garbage (request objects, parsed rows) and keeps those
 * pages resident: measured, the api's RSS grew ~87 MB over 10,000 fuzz bodies with the default
 * and ~22 MB with a 4 MB cap, and idle RSS fell by ~18 MB, at no measurable cost to bulk intake
 * (rows die young; scavenges of a small space are short). 2 MB rather than 4 took another 4 MB
 * off the idle api (120.5 → 116.5 MB, API_KEYS set) for ~2% of /predict's req/s at c=64
 * (9,777 and 9,984 against 10,037 and 10,120, alternating runs).
 * And an old generation allowed to grow to 1.5 × what the last full collection kept, not
 * V8's own factor (up to 4× when collection lags allocation, as on a busy machine): over the
 * same fuzz run the api's committed old space went from 46 to 101 MB while 62 MB of it was in
 * use, and RSS growth reached 105-108 MB in full-suite runs; with the factor it grew -2 to 18
 * MB, and /predict at c=64 was unchanged (7,768 against 7,267 req/s, medians of three
 * alternating runs). The worker keeps V8's defaults.
 */
export const V8_FLAGS: Readonly<Record<'api' | 'worker', readonly string[]>> = {
  api: ['--max-semi-space-size=2', '--heap-growing-percent=50'],
  worker: [],
};

/** Node arguments that come before the role's entry script. */
export function nodeArgs(role: 'api' | 'worker'): string[] {
  return [...V8_FLAGS[role], '--import', PRELOAD];
}

/** Full argv (after the node binary) that starts the api or the worker. */
export function serviceArgs(role: 'api' | 'worker'): string[] {
  return [...nodeArgs(role), fileURLToPath(new URL(`../${role}/main.ts`, import.meta.url))];
}
