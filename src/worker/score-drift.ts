// Score drift: how far a version's live scores have moved from the scores it was built on. The
// model build bins its held-out scores into equal-population bins (scoreReference) and writes
// them into the manifest (score_reference); a worker keeps the bins of the last `window` scores it
// gave (ScoreDrift) and reports the population stability index between the two. PSI below 0.1 is
// read as no shift, 0.1–0.2 as a moderate one, above 0.2 as a shift worth acting on.
import { z } from 'zod';

export const ScoreReferenceSchema = z
  .strictObject({
    edges: z.array(z.number()).min(3).describe('ascending bin edges: bin i holds scores in [edges[i], edges[i+1]), the last bin its upper edge too'),
    fractions: z.array(z.number().min(0).max(1)).min(2).describe('the share of the held-out scores in each bin'),
  })
  .refine((r) => r.edges.length === r.fractions.length + 1, { message: 'edges must number one more than fractions', path: ['edges'] })
  .refine((r) => r.edges.every((e, i) => i === 0 || r.edges[i - 1]! < e), { message: 'edges must ascend', path: ['edges'] })
  .describe("the score distribution of the version's held-out rows, for drift (PSI)");
export type ScoreReference = z.infer<typeof ScoreReferenceSchema>;

/** A share of zero would make PSI infinite: an empty bin counts as this small share. */
const EMPTY_SHARE = 1e-4;

/** Equal-population bins of `scores` between `lowest` and `highest` (a probability's 0 and 1 by default). */
export function scoreReference(scores: ArrayLike<number>, bins = 10, lowest = 0, highest = 1): ScoreReference {
  const sorted = Float64Array.from(scores).sort();
  const edges = [lowest];
  for (let b = 1; b < bins; b++) {
    const edge = sorted[Math.floor((b * sorted.length) / bins)]!;
    // Ties (many equal scores) merge bins rather than make empty ones.
    if (edge > edges.at(-1)!) edges.push(edge);
  }
  edges.push(highest);
  const counts = new Array<number>(edges.length - 1).fill(0);
  for (const s of sorted) counts[binOf(edges, s)]!++;
  return { edges, fractions: counts.map((c) => c / sorted.length) };
}

function binOf(edges: readonly number[], score: number): number {
  // Few bins: a linear scan is as fast as a search.
  for (let i = 1; i < edges.length - 1; i++) if (score < edges[i]!) return i - 1;
  return edges.length - 2;
}

/** Population stability index of observed bin shares against expected ones. */
export function psi(observed: readonly number[], expected: readonly number[]): number {
  let sum = 0;
  for (let i = 0; i < expected.length; i++) {
    const a = Math.max(observed[i]!, EMPTY_SHARE);
    const e = Math.max(expected[i]!, EMPTY_SHARE);
    sum += (a - e) * Math.log(a / e);
  }
  return sum;
}

/** The bins of a version's last `window` scores (a ring of bin numbers), against its reference. */
export class ScoreDrift {
  readonly reference: ScoreReference;
  readonly window: number;
  readonly #ring: Uint8Array;
  readonly #counts: Float64Array;
  #next = 0;
  #seen = 0;

  constructor(reference: ScoreReference, window: number) {
    if (reference.fractions.length > 255) throw new RangeError('at most 255 bins');
    this.reference = reference;
    this.window = window;
    this.#ring = new Uint8Array(window);
    this.#counts = new Float64Array(reference.fractions.length);
  }

  observe(scores: ArrayLike<number>): void {
    const edges = this.reference.edges;
    for (let i = 0; i < scores.length; i++) {
      const s = scores[i]!;
      if (!Number.isFinite(s)) continue;
      const bin = binOf(edges, s);
      if (this.#seen >= this.window) this.#counts[this.#ring[this.#next]!]!--;
      else this.#seen++;
      this.#ring[this.#next] = bin;
      this.#counts[bin]!++;
      this.#next = (this.#next + 1) % this.window;
    }
  }

  /** Scores in the window now. */
  get scores(): number {
    return this.#seen;
  }

  /** PSI of the window against the reference; undefined before any score. */
  get psi(): number | undefined {
    if (this.#seen === 0) return undefined;
    return psi(
      Array.from(this.#counts, (c) => c / this.#seen),
      this.reference.fractions,
    );
  }
}
