// Warnings that repeat by the thousand under overload (504 timeout, 429 overloaded, 507 Redis
// full) are counted, not written one by one: the first of a burst is logged at once, the rest as
// one line per interval with how many there were.
import type { FastifyBaseLogger } from 'fastify';

export class WarningTally {
  readonly #log: FastifyBaseLogger;
  readonly #counts = new Map<string, number>();
  readonly #timer: NodeJS.Timeout;

  constructor(log: FastifyBaseLogger, intervalMs: number) {
    this.#log = log;
    this.#timer = setInterval(() => this.flush(), intervalMs);
    this.#timer.unref();
  }

  count(code: string): void {
    const seen = this.#counts.get(code);
    if (seen === undefined) {
      // The first of its kind in this interval: said now, so a lone fault is not delayed.
      this.#log.warn({ code, count: 1 }, `answered ${code}`);
      this.#counts.set(code, 0);
      return;
    }
    this.#counts.set(code, seen + 1);
  }

  flush(): void {
    for (const [code, count] of this.#counts) {
      if (count > 0) this.#log.warn({ code, count }, `answered ${code} ${count} more time(s) in the last interval`);
    }
    this.#counts.clear();
  }

  close(): void {
    clearInterval(this.#timer);
    this.flush();
  }
}
