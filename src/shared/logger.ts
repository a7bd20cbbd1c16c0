// pino options both processes share. Record contents are never logged at info level.
import { pino, type Logger, type LoggerOptions } from 'pino';
import { isSpanContextValid, trace } from '@opentelemetry/api';

/** trace_id and span_id of the active span, so a log line can be found from its trace and back. */
function traceFields(): Record<string, string> {
  const span = trace.getActiveSpan();
  if (!span) return {};
  const ctx = span.spanContext();
  return isSpanContextValid(ctx) ? { trace_id: ctx.traceId, span_id: ctx.spanId } : {};
}

export function loggerOptions(service: string, level: string): LoggerOptions {
  return {
    level,
    base: { service, pid: process.pid },
    timestamp: pino.stdTimeFunctions.isoTime,
    redact: { paths: ['req.headers.authorization'], censor: '[redacted]' },
    mixin: traceFields,
  };
}

export function createLogger(service: string, level: string): Logger {
  return pino(loggerOptions(service, level));
}

export type { Logger };

/** What a component needs of a logger; both pino and Fastify's request-scoped loggers fit. */
export type LogSink = Pick<Logger, 'debug' | 'info' | 'warn' | 'error'>;
