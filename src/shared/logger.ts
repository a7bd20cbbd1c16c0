// pino options both processes share. Record contents are never logged at info level.
import { pino, type Logger, type LoggerOptions } from 'pino';

export function loggerOptions(service: string, level: string): LoggerOptions {
  return {
    level,
    base: { service, pid: process.pid },
    timestamp: pino.stdTimeFunctions.isoTime,
    redact: { paths: ['req.headers.authorization'], censor: '[redacted]' },
  };
}

export function createLogger(service: string, level: string): Logger {
  return pino(loggerOptions(service, level));
}

export type { Logger };

/** What a component needs of a logger; both pino and Fastify's request-scoped loggers fit. */
export type LogSink = Pick<Logger, 'debug' | 'info' | 'warn' | 'error'>;
