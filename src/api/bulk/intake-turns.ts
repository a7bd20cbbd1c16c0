// The event-loop turns that the uploads parsed at once share, least parsed first. Each upload
// parses in short slices (submit.ts) and asks for its next turn here. The turn goes to the
// waiting upload with the fewest rows parsed so far, so a 10,000-record job sent beside a
// million-record one is read as if it were alone, instead of sharing every turn half and half.
// Only an upload that is waiting takes part: one whose bytes have not arrived yet blocks nobody.
// So that a steady flow of small jobs cannot stall a large one, an upload passed over
// MAX_PASSED_OVER times in a row goes next.

/** A large upload keeps at least one turn in MAX_PASSED_OVER + 1 while smaller ones keep coming. */
export const MAX_PASSED_OVER = 8;

type Waiter = { rows: number; passedOver: number; resume: () => void };

export class IntakeTurns {
  readonly #waiting: Waiter[] = [];
  #scheduled = false;

  /** Resolves on a later turn of the loop, when this upload (having parsed `rows`) is next. */
  next(rows: number): Promise<void> {
    return new Promise((resume) => {
      this.#waiting.push({ rows, passedOver: 0, resume });
      this.#schedule();
    });
  }

  #schedule(): void {
    if (this.#scheduled) return;
    this.#scheduled = true;
    // setImmediate: the loop polls I/O (online calls, other bodies' bytes) before each turn.
    setImmediate(() => {
      this.#scheduled = false;
      const at = this.#pick();
      const [next] = this.#waiting.splice(at, 1);
      for (const other of this.#waiting) other.passedOver++;
      if (this.#waiting.length > 0) this.#schedule();
      next!.resume();
    });
  }

  /** The least parsed waiter, unless some were passed over MAX_PASSED_OVER times: then the longest passed over. */
  #pick(): number {
    let least = 0;
    let starved = -1;
    for (let i = 0; i < this.#waiting.length; i++) {
      const w = this.#waiting[i]!;
      if (w.passedOver >= MAX_PASSED_OVER && (starved < 0 || w.passedOver > this.#waiting[starved]!.passedOver)) starved = i;
      if (w.rows < this.#waiting[least]!.rows) least = i;
    }
    return starved >= 0 ? starved : least;
  }
}
