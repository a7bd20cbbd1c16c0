// A small registry of shutdown steps. On SIGTERM or SIGINT every step runs once, in the order
// registered, under one deadline; a failing step is logged and the next still runs. The
// process then exits 0 (a clean drain) or 128 + signal number if the deadline passed.
import type { Logger } from 'pino';

type Step = { name: string; run: () => Promise<void> | void };

const SIGNAL_NUMBERS = { SIGINT: 2, SIGTERM: 15 } as const;

export class Shutdown {
  readonly #steps: Step[] = [];
  readonly #logger: Logger;
  readonly #deadlineMs: number;
  #running: Promise<void> | undefined;

  constructor(logger: Logger, deadlineMs: number) {
    this.#logger = logger;
    this.#deadlineMs = deadlineMs;
  }

  add(name: string, run: Step['run']): void {
    this.#steps.push({ name, run });
  }

  /** Installs the signal handlers. */
  listen(): void {
    for (const signal of Object.keys(SIGNAL_NUMBERS) as (keyof typeof SIGNAL_NUMBERS)[]) {
      process.once(signal, () => {
        void this.run(signal).then((clean) => process.exit(clean ? 0 : 128 + SIGNAL_NUMBERS[signal]));
      });
    }
  }

  /** Runs every step once; a second call waits on the first. Resolves true when all finished in time. */
  async run(reason: string): Promise<boolean> {
    this.#running ??= this.#runSteps(reason);
    let timer: NodeJS.Timeout | undefined;
    const deadline = new Promise<'late'>((resolve) => {
      timer = setTimeout(() => resolve('late'), this.#deadlineMs);
      timer.unref();
    });
    const outcome = await Promise.race([this.#running.then(() => 'done' as const), deadline]);
    clearTimeout(timer);
    if (outcome === 'late') this.#logger.error({ deadline_ms: this.#deadlineMs }, 'shutdown deadline passed');
    return outcome === 'done';
  }

  async #runSteps(reason: string): Promise<void> {
    this.#logger.info({ reason }, 'shutting down');
    for (const step of this.#steps) {
      const started = performance.now();
      try {
        await step.run();
        this.#logger.info({ step: step.name, ms: Math.round(performance.now() - started) }, 'shutdown step done');
      } catch (err) {
        this.#logger.error({ err, step: step.name }, 'shutdown step failed');
      }
    }
    this.#logger.info('shutdown complete');
  }
}
