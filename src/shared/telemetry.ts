// OpenTelemetry for both processes: one NodeSDK, started before the process does any work
// and shut down last. Metrics are always collected and served as Prometheus text on the
// process's own /metrics; traces are exported over OTLP only when an endpoint is set.
import { NodeSDK } from '@opentelemetry/sdk-node';
import { PrometheusExporter } from '@opentelemetry/exporter-prometheus';
import { metrics, type Meter } from '@opentelemetry/api';
import type { IncomingMessage, ServerResponse } from 'node:http';

export type Telemetry = {
  meter: Meter;
  /** Writes the Prometheus text exposition of every metric to res. */
  serveMetrics: (req: IncomingMessage, res: ServerResponse) => void;
  shutdown: () => Promise<void>;
};

export type TelemetryOptions = {
  serviceName: string;
  otlpEndpoint: string | undefined;
  disabled: boolean;
};

export function startTelemetry(options: TelemetryOptions): Telemetry {
  // Served on the process's own port rather than the exporter's: one port per process.
  const prometheus = new PrometheusExporter({ preventServerStart: true });
  const sdk = new NodeSDK({
    serviceName: options.serviceName,
    metricReaders: [prometheus],
    // Trace export is configured from OTEL_* variables by the SDK itself; without an endpoint
    // there is nothing to send to.
    ...(options.otlpEndpoint ? {} : { traceExporter: undefined, spanProcessors: [] }),
    instrumentations: [],
  });
  if (!options.disabled) sdk.start();
  return {
    meter: metrics.getMeter(options.serviceName),
    serveMetrics: (req, res) => prometheus.getMetricsRequestHandler(req, res),
    shutdown: () => (options.disabled ? Promise.resolve() : sdk.shutdown()),
  };
}
