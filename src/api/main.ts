// The api process: config → telemetry → app → listen; SIGTERM drains it.
import { loadConfigOrExit } from '../shared/config.ts';
import { createLogger } from '../shared/logger.ts';
import { startTelemetry } from '../shared/telemetry.ts';
import { Shutdown } from '../shared/shutdown.ts';
import { listenFailure } from '../shared/listen-error.ts';
import { buildApp } from './app.ts';
import { startOipGrpcServer } from './oip/grpc-server.ts';

const config = loadConfigOrExit();

const telemetry = startTelemetry({ serviceName: 'scoring-api', ...config.telemetry });
const logger = createLogger('api', config.logLevel);
const app = await buildApp({ config, telemetry });
const grpc = await startOipGrpcServer({
  backend: app.oip.backend,
  host: config.api.host,
  port: config.api.grpcPort,
  apiKeys: config.api.apiKeys,
  timeoutMs: config.api.predictTimeoutMs,
  // The same ceiling as /predict's ?timeout_ms=.
  maxTimeoutMs: 30_000,
  maxBatch: config.api.maxBatchRecords,
  log: logger,
  aroundCall: app.oip.aroundCall,
});
const shutdown = new Shutdown(logger, config.api.shutdownTimeoutMs);
// Both stop accepting at once and answer the calls in flight. Fastify then runs every onClose hook:
// the dispatcher waits for the replies its callers (gRPC's included) still wait for.
shutdown.add('grpc and http', async () => {
  await Promise.all([grpc.close(config.api.shutdownTimeoutMs), app.close()]);
});
shutdown.add('telemetry', () => telemetry.shutdown());
shutdown.listen();

try {
  // Node's default backlog (511) leaves a burst of clients unanswered for seconds while their
  // SYNs are retried; the kernel caps it at net.core.somaxconn.
  await app.listen({ port: config.api.port, host: config.api.host, backlog: config.api.listenBacklog });
} catch (err) {
  console.error(listenFailure('api', 'PORT', config.api.host, config.api.port, err));
  process.exit(1);
}
