// OpenTelemetry for both processes: one NodeSDK per process, started by telemetry-preload.ts
// (node --import) before any module it instruments is loaded, and shut down last. Metrics are
// always collected and served as Prometheus text on the process's own /metrics; traces are
// exported over OTLP only when OTEL_EXPORTER_OTLP_ENDPOINT is set, and with
// OTEL_SDK_DISABLED=true nothing is started at all (no hooks, no spans, empty /metrics).
import { createRequire } from 'node:module';
import type { IncomingMessage, ServerResponse } from 'node:http';
import { PrometheusExporter } from '@opentelemetry/exporter-prometheus';
import { AggregationType, MeterProvider, type ViewOptions } from '@opentelemetry/sdk-metrics';
import { registerInstrumentations } from '@opentelemetry/instrumentation';
import { RuntimeNodeInstrumentation } from '@opentelemetry/instrumentation-runtime-node';
import { resourceFromAttributes } from '@opentelemetry/resources';
import { metrics, ProxyTracerProvider, trace, type Meter, type Tracer } from '@opentelemetry/api';
import type { NodeSDK } from '@opentelemetry/sdk-node';
import type { HttpInstrumentation } from '@opentelemetry/instrumentation-http';
import type { BullMQOtel } from 'bullmq-otel';

// The tracing side (the SDK with its OTLP exporters, the HTTP instrumentation, BullMQ's spans) is
// loaded only when spans are exported: an api that only serves metrics idles ~6 MB smaller.
// require, not import(): startTelemetry runs in the preload and must stay synchronous.
const load = createRequire(import.meta.url);

/**
 * Buckets that resolve 1 ms at the low end, for durations recorded in seconds. Every duration
 * histogram of the service uses them, so api and worker latencies can be compared bucket by bucket.
 */
export const DURATION_BUCKETS_S = [0.0005, 0.001, 0.002, 0.003, 0.005, 0.0075, 0.01, 0.015, 0.025, 0.05, 0.1, 0.25, 0.5, 1, 2.5, 5, 10];

/** Paths an orchestrator or Prometheus polls: no span for them, they would drown the traces. */
const UNTRACED_PATHS = new Set(['/metrics', '/health', '/ready']);

export type Telemetry = {
  meter: Meter;
  /** Always present: OpenTelemetry's no-op tracer while spans are not exported, so callers never check. */
  tracer: Tracer;
  /** True when spans are recorded and exported (an OTLP endpoint is set and the SDK is on). */
  tracing: boolean;
  /** Writes the Prometheus text exposition of every metric to res. */
  serveMetrics: (req: IncomingMessage, res: ServerResponse) => void;
  /** Flushes and stops every provider; idempotent. */
  shutdown: () => Promise<void>;
};

export type TelemetryOptions = {
  serviceName: string;
  otlpEndpoint: string | undefined;
  disabled: boolean;
};

let current: Telemetry | undefined;

/** The instrument the HTTP instrumentation records, recorded by the api itself when tracing is off. */
export const HTTP_SERVER_DURATION = 'http.server.request.duration';

/**
 * Starts the SDK once per process and returns it; later calls return the same instance, so
 * main.ts gets what the preload started (the service name of the first call wins).
 */
export function startTelemetry(options: TelemetryOptions): Telemetry {
  current ??= create(options);
  return current;
}

/**
 * BullMQ's own telemetry option, to spread into a Queue's or Worker's options: with it BullMQ
 * opens a span per add/process and carries the trace context inside each job. Empty while
 * spans are not exported (`tracing`, the caller's Telemetry.tracing), so BullMQ does none of that
 * work for nothing. Used for bulk chunks; online calls carry their context per call instead
 * (trace-carrier.ts).
 */
export function bullmqTelemetry(tracing: boolean): { telemetry?: BullMQOtel } {
  if (!tracing) return {};
  const { BullMQOtel: Otel } = load('bullmq-otel') as { BullMQOtel: typeof BullMQOtel };
  return { telemetry: new Otel({ tracerName: 'scoring-bullmq' }) };
}

/**
 * CPU time and resident memory of the process, which the runtime instrumentation does not
 * report (it covers V8 and the event loop), under OpenTelemetry's process.* names.
 */
function observeProcess(meter: Meter): void {
  meter.createObservableCounter('process.cpu.time', { description: 'CPU seconds used by the process', unit: 's' }).addCallback((result) => {
    const { user, system } = process.cpuUsage();
    result.observe(user / 1e6, { 'cpu.mode': 'user' });
    result.observe(system / 1e6, { 'cpu.mode': 'system' });
  });
  meter
    .createObservableGauge('process.memory.usage', { description: 'Resident set size of the process', unit: 'By' })
    .addCallback((result) => result.observe(process.memoryUsage.rss()));
}

function create(options: TelemetryOptions): Telemetry {
  const scope = options.serviceName;
  if (options.disabled) {
    return {
      meter: metrics.getMeter(scope),
      tracer: noopTracer(scope),
      tracing: false,
      serveMetrics: (_req, res) => {
        res.writeHead(200, { 'content-type': 'text/plain; version=0.0.4' }).end('# telemetry disabled (OTEL_SDK_DISABLED=true)\n');
      },
      shutdown: () => Promise.resolve(),
    };
  }
  // Served on the process's own port rather than the exporter's: one port per process.
  const prometheus = new PrometheusExporter({ preventServerStart: true });
  const tracing = Boolean(options.otlpEndpoint);
  const views: ViewOptions[] = [
    {
      // The instrumentation's own buckets start at 5 ms; ours resolve 1 ms.
      instrumentName: HTTP_SERVER_DURATION,
      // The Prometheus exporter does not append the unit; the name says it, like our own.
      name: 'http.server.request.duration_seconds',
      aggregation: { type: AggregationType.EXPLICIT_BUCKET_HISTOGRAM, options: { boundaries: DURATION_BUCKETS_S } },
    },
    // Runtime metrics named with their unit too (process_cpu_time_seconds_total, …).
    { instrumentName: 'process.cpu.time', name: 'process.cpu.time_seconds' },
    { instrumentName: 'process.memory.usage', name: 'process.memory.usage_bytes' },
    { instrumentName: 'v8js.gc.duration', name: 'v8js.gc.duration_seconds' },
  ];
  const stop = tracing ? startSdk(options.serviceName, prometheus, views) : startMetricsOnly(options.serviceName, prometheus, views);
  observeProcess(metrics.getMeter(scope));
  let stopped: Promise<void> | undefined;
  return {
    meter: metrics.getMeter(scope),
    // Without an exporter there is no tracer provider at all: every span the code starts is OpenTelemetry's no-op.
    tracer: tracing ? trace.getTracer(scope) : noopTracer(scope),
    tracing,
    serveMetrics: (req, res) => prometheus.getMetricsRequestHandler(req, res),
    shutdown: () => (stopped ??= stop()),
  };
}

/** Metrics only: a meter provider read by Prometheus, and the runtime's own metrics. Returns its shutdown. */
function startMetricsOnly(serviceName: string, prometheus: PrometheusExporter, views: ViewOptions[]): () => Promise<void> {
  const provider = new MeterProvider({ resource: resourceFromAttributes({ 'service.name': serviceName }), readers: [prometheus], views });
  metrics.setGlobalMeterProvider(provider);
  registerInstrumentations({ instrumentations: [new RuntimeNodeInstrumentation()], meterProvider: provider });
  return () => provider.shutdown();
}

/** The SDK, with spans exported over OTLP as well as the metrics. Returns its shutdown. */
function startSdk(serviceName: string, prometheus: PrometheusExporter, views: ViewOptions[]): () => Promise<void> {
  const { NodeSDK: Sdk } = load('@opentelemetry/sdk-node') as { NodeSDK: typeof NodeSDK };
  const { HttpInstrumentation: Http } = load('@opentelemetry/instrumentation-http') as { HttpInstrumentation: typeof HttpInstrumentation };
  const sdk = new Sdk({
    serviceName,
    metricReaders: [prometheus],
    views,
    // The SDK builds the OTLP exporter from the OTEL_EXPORTER_OTLP_* variables (protocol, headers) itself.
    // Logs go to stdout as pino JSON (with trace ids); the SDK must not ship them as well.
    logRecordProcessors: [],
    // Only while spans are exported: the HTTP server span, traceparent extraction and
    // http.server.request.duration. Measured at c=64 it cost ~30 % more CPU per /predict when
    // nothing is exported, so without tracing the api records that histogram itself from a
    // Fastify hook (plugins/observability.ts). The route is set by the api, which is all
    // Fastify's own instrumentation would add here: its per-hook spans cost more than they tell.
    // Outgoing requests are not instrumented: the only client is the OTLP exporter itself.
    // The runtime's own metrics, always: event-loop delay and utilization, heap spaces, GC
    // durations (read from perf_hooks when Prometheus scrapes; no per-request cost).
    instrumentations: [
      new RuntimeNodeInstrumentation(),
      new Http({
        disableOutgoingRequestInstrumentation: true,
        ignoreIncomingRequestHook: (req) => UNTRACED_PATHS.has((req.url ?? '/').split('?')[0] ?? ''),
      }),
    ],
  });
  sdk.start();
  return () => sdk.shutdown();
}

/** A provider with no delegate hands out OpenTelemetry's no-op tracer: spans that record nothing. */
function noopTracer(scope: string): Tracer {
  return new ProxyTracerProvider().getTracer(scope);
}
