// Probability → decision, with the thresholds the contract defines: approve below `approve`,
// review below `review`, decline from there up.
import type { Decision } from '../shared/schemas/prediction.ts';

export type Thresholds = { approve: number; review: number };

export function decide(probability: number, thresholds: Thresholds): Decision {
  if (probability < thresholds.approve) return 'approve';
  if (probability < thresholds.review) return 'review';
  return 'decline';
}
