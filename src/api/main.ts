// The api process: config → telemetry → app → listen; SIGTERM drains it.
import { loadConfigOrExit } from '../shared/config.ts';
import { createLogger } from '../shared/logger.ts';
import { startTelemetry } from '../shared/telemetry.ts';
import { Shutdown } from '../shared/shutdown.ts';
import { listenFailure } from '../shared/listen-error.ts';
import { buildApp } from './app.ts';

const config = loadConfigOrExit();

const telemetry = startTelemetry({ serviceName: 'scoring-api', ...config.telemetry });
const logger = createLogger('api', config.logLevel);
const app = await buildApp({ config, telemetry });
const shutdown = new Shutdown(logger, config.api.shutdownTimeoutMs);
// Fastify stops accepting, answers the requests in flight, then runs every onClose hook.
shutdown.add('http', () => app.close());
shutdown.add('telemetry', () => telemetry.shutdown());
shutdown.listen();

try {
  await app.listen({ port: config.api.port, host: config.api.host });
} catch (err) {
  console.error(listenFailure('api', 'PORT', config.api.host, config.api.port, err));
  process.exit(1);
}
