// Online work before bulk work, inside one worker. session.run holds the event loop, so a bulk
// slice that starts while an online call waits delays that call by the slice's whole length. The
// online consumer holds this gate from the moment it picks a job until that job's batch has been
// scored; the bulk scorer waits for the gate to be free before every slice. Bulk still runs at
// full speed whenever no online work is in hand, and a slice already running is never cut short
// (it is sized to a few ms: SliceSizer). The reply's publish is not held: it is I/O, and a bulk
// slice may run while it travels.

export class OnlineFirst {
  #held = 0;
  #waiters: (() => void)[] = [];

  /** Online work picked and not yet scored. */
  get held(): number {
    return this.#held;
  }

  take(): void {
    this.#held++;
  }

  release(): void {
    if (this.#held === 0) throw new Error('OnlineFirst.release() without take()');
    this.#held--;
    if (this.#held > 0) return;
    const waiters = this.#waiters;
    this.#waiters = [];
    for (const wake of waiters) wake();
  }

  /** Resolves at once when no online work is in hand, else as soon as there is none. */
  idle(): Promise<void> {
    if (this.#held === 0) return Promise.resolve();
    return new Promise((resolve) => this.#waiters.push(resolve));
  }
}

/**
 * Rows per bulk session.run, sized by time: a slice should take about targetMs, measured on the
 * model that runs it, whatever its cost per row (a wide model and a small tree ensemble differ by
 * orders of magnitude). The estimate follows each slice's own timing (an exponential moving
 * average of ms per row), so a machine that slows down under load gets shorter slices.
 */
export class SliceSizer {
  readonly #targetMs: number;
  #msPerRow: number | undefined;

  static readonly MIN_ROWS = 32;
  static readonly MAX_ROWS = 65_536;
  /** The first slice of a model, before anything is measured: small enough for any model we serve. */
  static readonly FIRST_ROWS = 256;
  /** Weight of the newest slice in the average: a few slices follow a change, one outlier does not. */
  static readonly SMOOTHING = 0.25;

  constructor(targetMs: number) {
    this.#targetMs = targetMs;
  }

  rows(): number {
    if (this.#msPerRow === undefined) return SliceSizer.FIRST_ROWS;
    const rows = Math.floor(this.#targetMs / this.#msPerRow);
    return Math.min(SliceSizer.MAX_ROWS, Math.max(SliceSizer.MIN_ROWS, rows));
  }

  observe(rows: number, ms: number): void {
    if (rows <= 0 || !(ms >= 0)) return;
    const perRow = Math.max(ms, 0.001) / rows;
    this.#msPerRow = this.#msPerRow === undefined ? perRow : this.#msPerRow + SliceSizer.SMOOTHING * (perRow - this.#msPerRow);
  }
}
