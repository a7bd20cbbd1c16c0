// The worker process: config → telemetry → startWorker → signals. SIGTERM drains it (worker.ts),
// then telemetry is shut down last, so the drain's own spans are exported.
import { loadConfigOrExit } from '../shared/config.ts';
import { createLogger } from '../shared/logger.ts';
import { startTelemetry } from '../shared/telemetry.ts';
import { Shutdown } from '../shared/shutdown.ts';
import { WorkerStartError, startWorker } from './worker.ts';

const config = loadConfigOrExit();
const telemetry = startTelemetry({ serviceName: 'scoring-worker', ...config.telemetry });
const logger = createLogger('worker', config.logLevel);

const worker = await startWorker(config, { telemetry, logger }).catch(async (err: unknown) => {
  // A taken port is one plain line on stderr (no stack): the operator's next step is in it.
  if (err instanceof WorkerStartError && err.reason === 'listen') console.error(err.message);
  else if (err instanceof WorkerStartError) logger.fatal({ ...err.details }, err.message);
  else logger.fatal({ err }, 'the worker could not start');
  await telemetry.shutdown();
  process.exit(1);
});

const shutdown = new Shutdown(logger, config.worker.shutdownTimeoutMs);
shutdown.add('worker', () => worker.close());
shutdown.add('telemetry', () => telemetry.shutdown());
shutdown.listen();
