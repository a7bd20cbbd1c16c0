// A dynamic batcher in the manner of Triton's: items gather while a batch runs, and the next
// batch takes them all at once, up to maxBatchSize (counted by sizeOf). With maxDelayMs 0 a
// batch takes what is there and never waits idle; above 0, a batch that is not full waits at
// most that long for company. One batch runs at a time: inference holds the CPU anyway, and
// what arrives meanwhile makes the next batch bigger.

export type BatcherOptions<T> = {
  maxBatchSize: number;
  maxDelayMs: number;
  sizeOf: (item: T) => number;
  run: (items: T[]) => Promise<void>;
};

type Entry<T> = { item: T; resolve: () => void; reject: (err: unknown) => void };

export class Batcher<T> {
  readonly #options: BatcherOptions<T>;
  #queue: Entry<T>[] = [];
  #queuedSize = 0;
  #running = false;
  #timer: NodeJS.Timeout | undefined;
  #immediate: NodeJS.Immediate | undefined;

  constructor(options: BatcherOptions<T>) {
    this.#options = options;
  }

  /** Resolves when the batch holding item has run; rejects with that batch's error. */
  add(item: T): Promise<void> {
    return new Promise<void>((resolve, reject) => {
      this.#queue.push({ item, resolve, reject });
      this.#queuedSize += this.#options.sizeOf(item);
      this.#schedule();
    });
  }

  get queuedItems(): number {
    return this.#queue.length;
  }

  #schedule(): void {
    if (this.#running) return; // the running batch flushes when it ends
    if (this.#queuedSize >= this.#options.maxBatchSize) {
      this.#flushNow();
    } else if (this.#options.maxDelayMs === 0) {
      this.#immediate ??= setImmediate(() => this.#flushNow());
    } else {
      this.#timer ??= setTimeout(() => this.#flushNow(), this.#options.maxDelayMs);
    }
  }

  #flushNow(): void {
    clearTimeout(this.#timer);
    clearImmediate(this.#immediate);
    this.#timer = undefined;
    this.#immediate = undefined;
    if (this.#running || this.#queue.length === 0) return;

    const batch: Entry<T>[] = [];
    let size = 0;
    // Always take at least one item, even one larger than maxBatchSize on its own.
    while (this.#queue.length > 0) {
      const next = this.#queue[0]!;
      const nextSize = this.#options.sizeOf(next.item);
      if (batch.length > 0 && size + nextSize > this.#options.maxBatchSize) break;
      batch.push(this.#queue.shift()!);
      size += nextSize;
    }
    this.#queuedSize -= size;
    this.#running = true;
    void this.#options.run(batch.map((e) => e.item)).then(
      () => this.#finish(batch, undefined),
      (err: unknown) => this.#finish(batch, err ?? new Error('batch failed')),
    );
  }

  #finish(batch: Entry<T>[], err: unknown): void {
    this.#running = false;
    for (const entry of batch) {
      if (err === undefined) entry.resolve();
      else entry.reject(err);
    }
    // Whatever gathered while this batch ran has waited already: run it without more delay.
    if (this.#queue.length > 0) this.#flushNow();
  }
}
