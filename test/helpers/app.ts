// The api in-process for inject() tests: buildApp() with a real Redis under a prefix of its own,
// closed and its keys removed when the test (or suite) that built it ends. The one place tests
// call buildApp, so a change of its signature is absorbed here.
import type { FastifyInstance } from 'fastify';
import { buildApp } from '../../src/api/app.ts';
import { loadConfig, type Config } from '../../src/shared/config.ts';
import { startTelemetry } from '../../src/shared/telemetry.ts';
import { prefixedRedis, type PrefixedRedis } from './redis-prefix.ts';
import { waitFor } from './wait.ts';

export type TestApp = { app: FastifyInstance; config: Config; redis: PrefixedRedis };

/** Anything with node:test's `after` (a TestContext, or `{ after }` from node:test for a suite). */
export type Teardown = { after: (fn: () => Promise<void>) => unknown };

/**
 * @param overrides environment variables as the service reads them (e.g. API_KEYS); REDIS_URL and
 *   QUEUE_PREFIX are the helper's.
 */
export async function buildTestApp(t: Teardown, overrides: Record<string, string> = {}): Promise<TestApp> {
  const redis = await prefixedRedis('api');
  const config = loadConfig({ LOG_LEVEL: 'silent', OTEL_SDK_DISABLED: 'true', ...overrides, REDIS_URL: redis.url, QUEUE_PREFIX: redis.prefix });
  const telemetry = startTelemetry({ serviceName: 'scoring-api-test', ...config.telemetry });
  // eslint-disable-next-line prefer-const -- the teardown is registered first, so a failing build still cleans up
  let app: FastifyInstance | undefined;
  t.after(async () => {
    await app?.close();
    await redis.close();
  });
  app = await buildApp({ config, telemetry });
  // As a process is, the app is used once it says it is ready: its Redis connections are up.
  const ready = app;
  await waitFor(async () => (await ready.inject({ method: 'GET', url: '/ready' })).statusCode === 200, { what: 'the app to be ready' });
  return { app, config, redis };
}
