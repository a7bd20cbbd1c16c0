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

/** pino-pretty's options for a terminal: local time, the service before the message. */
export const PRETTY_OPTIONS = {
  colorize: true,
  translateTime: 'SYS:HH:MM:ss.l',
  ignore: 'pid,hostname,service',
  messageFormat: '{service}: {msg}',
};

/**
 * On a terminal, lines for a person (pino-pretty, in a worker thread); anywhere else (a pipe,
 * a container's log driver, npm start's prefixer) one JSON object per line for the machines.
 */
export function prettyTransport(pretty: boolean): Pick<LoggerOptions, 'transport'> {
  if (!pretty) return {};
  return {
    transport: {
      target: 'pino-pretty',
      options: PRETTY_OPTIONS,
    },
  };
}

export function loggerOptions(service: string, level: string, pretty = Boolean(process.stdout.isTTY)): LoggerOptions {
  return {
    ...prettyTransport(pretty),
    level,
    base: { service, pid: process.pid },
    timestamp: pino.stdTimeFunctions.isoTime,
    redact: { paths: ['req.headers.authorization'], censor: '[redacted]' },
    mixin: traceFields,
  };
}

export function createLogger(service: string, level: string, pretty?: boolean): Logger {
  return pino(loggerOptions(service, level, pretty));
}

export type { Logger };

/** What a component needs of a logger; both pino and Fastify's request-scoped loggers fit. */
export type LogSink = Pick<Logger, 'debug' | 'info' | 'warn' | 'error'>;
