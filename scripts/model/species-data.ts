// Generated flower measurements for the second model: three species, four measurements (cm) each
// drawn from a per-species normal distribution whose means and spreads follow the shape of
// Fisher's iris data. Deterministic for a seed; nothing is downloaded.
import { mulberry32 } from './fraud-data.ts';

export const SPECIES = ['setosa', 'versicolor', 'virginica'] as const;
export const MEASUREMENTS = ['sepal_length', 'sepal_width', 'petal_length', 'petal_width'] as const;

// Per species: mean and standard deviation of each measurement, in MEASUREMENTS order.
const DISTRIBUTIONS: readonly { mean: readonly number[]; sd: readonly number[] }[] = [
  { mean: [5.0, 3.4, 1.5, 0.25], sd: [0.35, 0.38, 0.17, 0.1] },
  { mean: [5.9, 2.8, 4.3, 1.3], sd: [0.5, 0.31, 0.47, 0.2] },
  { mean: [6.6, 3.0, 5.55, 2.0], sd: [0.64, 0.32, 0.55, 0.27] },
];

export interface SpeciesRows {
  /** Row-major [rows, 4] measurements, rounded to 0.1 cm as a ruler reads them. */
  features: Float64Array;
  /** Species index per row. */
  labels: Uint8Array;
  rows: number;
}

export function generateSpeciesRows(seed: number, rows: number): SpeciesRows {
  const random = mulberry32(seed);
  // Box–Muller: two uniforms give one standard normal (the second is dropped to keep the stream simple).
  const normal = () => Math.sqrt(-2 * Math.log(1 - random())) * Math.cos(2 * Math.PI * random());
  const features = new Float64Array(rows * MEASUREMENTS.length);
  const labels = new Uint8Array(rows);
  for (let r = 0; r < rows; r++) {
    const species = Math.floor(random() * SPECIES.length);
    labels[r] = species;
    const { mean, sd } = DISTRIBUTIONS[species]!;
    for (let f = 0; f < MEASUREMENTS.length; f++) {
      const value = mean[f]! + sd[f]! * normal();
      features[r * MEASUREMENTS.length + f] = Math.max(0.1, Math.round(value * 10) / 10);
    }
  }
  return { features, labels, rows };
}
