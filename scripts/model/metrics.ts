// Held-out metrics the manifest records: ROC AUC (ranking quality, what the reference figures use)
// and log loss (calibration), computed the way scikit-learn defines them.

type Scores = ArrayLike<number>;
type Labels = ArrayLike<number>;

/**
 * ROC AUC as the Mann–Whitney statistic: the chance that a random positive scores above a random
 * negative, ties counting one half (average ranks), which equals scikit-learn's roc_auc_score.
 */
export function rocAuc(labels: Labels, scores: Scores): number {
  const n = labels.length;
  if (scores.length !== n) throw new RangeError('labels and scores differ in length');
  const order = Array.from({ length: n }, (_, i) => i).sort((a, b) => scores[a]! - scores[b]!);
  let positives = 0;
  let positiveRankSum = 0;
  let i = 0;
  while (i < n) {
    let j = i;
    while (j + 1 < n && scores[order[j + 1]!] === scores[order[i]!]) j++;
    const averageRank = (i + j) / 2 + 1;
    for (let k = i; k <= j; k++) {
      if (labels[order[k]!] === 1) {
        positives++;
        positiveRankSum += averageRank;
      }
    }
    i = j + 1;
  }
  const negatives = n - positives;
  if (positives === 0 || negatives === 0) throw new RangeError('ROC AUC needs both classes');
  return (positiveRankSum - (positives * (positives + 1)) / 2) / (positives * negatives);
}

/** Mean negative log-likelihood; probabilities are clipped so one confident miss is finite. */
export function logLoss(labels: Labels, probabilities: Scores, epsilon = 1e-15): number {
  const n = labels.length;
  if (probabilities.length !== n) throw new RangeError('labels and probabilities differ in length');
  let sum = 0;
  for (let i = 0; i < n; i++) {
    const p = Math.min(1 - epsilon, Math.max(epsilon, probabilities[i]!));
    sum -= labels[i] === 1 ? Math.log(p) : Math.log(1 - p);
  }
  return sum / n;
}
