// The api's span for one online call: from submit to its reply, as a child of the HTTP server
// span. Its context goes into the call (trace-carrier.ts), so the worker's spans for the call
// join the request's trace. The reply's timings land on it as attributes, which makes the
// request's own trace say where its time went even when the worker's spans are sampled away.
import { SpanKind, SpanStatusCode, type Span, type Tracer } from '@opentelemetry/api';
import type { CallTimings } from '../shared/queues.ts';

export function startCallSpan(tracer: Tracer, queueName: string, records: number, modelName: string): Span {
  // One span name for every model's queue, so traces are searched the same way; the queue is an attribute.
  return tracer.startSpan('send predict', {
    kind: SpanKind.PRODUCER,
    attributes: {
      'messaging.system': 'bullmq',
      'messaging.operation.type': 'send',
      'messaging.destination.name': queueName,
      'scoring.records': records,
      'model.name': modelName,
    },
  });
}

export function endCallSpanOk(span: Span, timings: CallTimings, modelVersion: string): void {
  span.setAttributes({
    'scoring.queue_ms': timings.queue_ms,
    'scoring.batch_wait_ms': timings.batch_wait_ms,
    'scoring.inference_ms': timings.inference_ms,
    'batch.size': timings.batch_records,
    'model.version': modelVersion,
  });
  span.end();
}

export function endCallSpanError(span: Span, error: Error): void {
  span.recordException(error);
  span.setStatus({ code: SpanStatusCode.ERROR, message: error.message });
  span.end();
}
