// W3C trace context in and out of queue job data. A predict job holds the calls of many HTTP
// requests, so the context rides in each call rather than once per job (BullMQ's telemetry
// option carries one context per job): that lets the worker's batch span link to every
// request it served and each request's trace continue into the worker.
import { context, propagation, ROOT_CONTEXT, trace, type Context, type Span, type SpanContext } from '@opentelemetry/api';

export type TraceCarrier = { traceparent: string; tracestate?: string };

/** The carrier of span's context; undefined when the span is not recording (tracing off). */
export function injectSpan(span: Span): TraceCarrier | undefined {
  if (!span.isRecording()) return undefined;
  const carrier: Record<string, string> = {};
  propagation.inject(trace.setSpan(context.active(), span), carrier);
  if (!carrier.traceparent) return undefined;
  return carrier.tracestate ? { traceparent: carrier.traceparent, tracestate: carrier.tracestate } : { traceparent: carrier.traceparent };
}

/** The context a carrier describes, for parenting a span on it; ROOT_CONTEXT when absent. */
export function extractContext(carrier: TraceCarrier | undefined): Context {
  return carrier ? propagation.extract(ROOT_CONTEXT, carrier) : ROOT_CONTEXT;
}

/** The remote span context a carrier describes, for a span link. */
export function extractSpanContext(carrier: TraceCarrier | undefined): SpanContext | undefined {
  return carrier ? trace.getSpanContext(extractContext(carrier)) : undefined;
}
