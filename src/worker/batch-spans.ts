// Spans of one online batch. One batch serves calls from many HTTP requests, so it cannot sit
// in any one request's trace: the batch span ("predict batch", child "inference") is a root
// that links to every call it served. Each call in turn gets spans in its own request's trace,
// parented on the context the api put in the call: "queue wait" (enqueue → pick-up) and
// "process predict" (pick-up → reply, child "batch wait"), which links back to the batch span
// and names its size and model version. So a request's trace shows its queue wait and the batch
// it rode in, and the batch shows every request it served.
import { ROOT_CONTEXT, SpanKind, SpanStatusCode, trace, type Link, type Span, type Tracer } from '@opentelemetry/api';
import { callRows, type OnlineCall } from '../shared/queues.ts';
import { extractContext, extractSpanContext } from '../shared/trace-carrier.ts';

export type TracedCall = { call: OnlineCall; enqueuedAt: number; pickedAt: number };

export function startBatchSpan(tracer: Tracer, calls: TracedCall[], records: number, startTime: number): Span {
  const links: Link[] = [];
  for (const { call } of calls) {
    const context = extractSpanContext(call.trace);
    if (context) links.push({ context, attributes: { 'scoring.call_id': call.call_id } });
  }
  return tracer.startSpan(
    'predict batch',
    {
      kind: SpanKind.INTERNAL,
      startTime,
      links,
      attributes: { 'batch.size': records, 'batch.calls': calls.length, 'messaging.batch.message_count': calls.length },
    },
    ROOT_CONTEXT,
  );
}

/** The model that scored a batch: its name and the version its replies name. */
export type ScoredBy = { modelName: string; modelVersion: string };

export function recordInferenceSpan(tracer: Tracer, batch: Span, startTime: number, endTime: number, by: ScoredBy): void {
  const attributes = { 'model.name': by.modelName, 'model.version': by.modelVersion };
  batch.setAttributes(attributes);
  tracer.startSpan('inference', { startTime, attributes }, trace.setSpan(ROOT_CONTEXT, batch)).end(endTime);
}

/** The spans of one call in its own request's trace; batch is absent for a call that expired. */
export function recordCallSpans(
  tracer: Tracer,
  traced: TracedCall,
  batchStart: number,
  batch: ({ span: Span; records: number } & ScoredBy) | undefined,
  endTime: number,
): void {
  const { call, enqueuedAt, pickedAt } = traced;
  if (!call.trace) return;
  const parent = extractContext(call.trace);
  tracer.startSpan('queue wait', { startTime: enqueuedAt }, parent).end(Math.max(enqueuedAt, pickedAt));
  const process = tracer.startSpan(
    'process predict',
    {
      kind: SpanKind.CONSUMER,
      startTime: pickedAt,
      links: batch ? [{ context: batch.span.spanContext() }] : [],
      attributes: {
        'messaging.system': 'bullmq',
        'messaging.operation.type': 'process',
        'messaging.destination.name': 'predict',
        'scoring.call_id': call.call_id,
        'scoring.records': callRows(call),
        'scoring.queue_ms': Math.max(0, pickedAt - enqueuedAt),
        ...(batch ? { 'batch.size': batch.records, 'model.name': batch.modelName, 'model.version': batch.modelVersion } : {}),
      },
    },
    parent,
  );
  if (batch) {
    tracer.startSpan('batch wait', { startTime: pickedAt }, trace.setSpan(parent, process)).end(batchStart);
  } else {
    process.setStatus({ code: SpanStatusCode.ERROR, message: 'deadline passed before the batch ran; not scored' });
  }
  process.end(endTime);
}
