// Multinomial logistic regression trained by full-batch gradient descent on standardized features,
// then folded back so the exported graph takes raw measurements: x·W' + b' with W' = W/σ and
// b' = b − (μ/σ)·W. Float64 throughout; deterministic.
import type { LinearSoftmaxModel } from './onnx-export.ts';

export interface SoftmaxOptions {
  iterations: number;
  learningRate: number;
  l2: number;
}

export const DEFAULT_SOFTMAX_OPTIONS: SoftmaxOptions = { iterations: 400, learningRate: 0.5, l2: 1e-3 };

/** Class probabilities of one row of logits, written into `out`. */
function softmaxInPlace(logits: Float64Array, out: Float64Array): void {
  let max = -Infinity;
  for (const z of logits) max = Math.max(max, z);
  let sum = 0;
  for (let c = 0; c < logits.length; c++) sum += out[c] = Math.exp(logits[c]! - max);
  for (let c = 0; c < logits.length; c++) out[c]! /= sum;
}

export function trainSoftmax(
  features: Float64Array,
  labels: Uint8Array,
  width: number,
  classes: number,
  options: SoftmaxOptions = DEFAULT_SOFTMAX_OPTIONS,
): LinearSoftmaxModel {
  const rows = labels.length;
  const mean = new Float64Array(width);
  const sd = new Float64Array(width);
  for (let r = 0; r < rows; r++) for (let f = 0; f < width; f++) mean[f]! += features[r * width + f]! / rows;
  for (let r = 0; r < rows; r++) for (let f = 0; f < width; f++) sd[f]! += (features[r * width + f]! - mean[f]!) ** 2 / rows;
  for (let f = 0; f < width; f++) sd[f] = Math.sqrt(sd[f]!) || 1;
  const x = features.map((v, i) => (v - mean[i % width]!) / sd[i % width]!);

  const w = new Float64Array(width * classes);
  const b = new Float64Array(classes);
  const logits = new Float64Array(classes);
  const p = new Float64Array(classes);
  for (let it = 0; it < options.iterations; it++) {
    const gw = new Float64Array(width * classes);
    const gb = new Float64Array(classes);
    for (let r = 0; r < rows; r++) {
      for (let c = 0; c < classes; c++) {
        let z = b[c]!;
        for (let f = 0; f < width; f++) z += x[r * width + f]! * w[f * classes + c]!;
        logits[c] = z;
      }
      softmaxInPlace(logits, p);
      for (let c = 0; c < classes; c++) {
        const g = p[c]! - (labels[r] === c ? 1 : 0);
        gb[c]! += g;
        for (let f = 0; f < width; f++) gw[f * classes + c]! += g * x[r * width + f]!;
      }
    }
    for (let i = 0; i < w.length; i++) w[i]! -= options.learningRate * (gw[i]! / rows + options.l2 * w[i]!);
    for (let c = 0; c < classes; c++) b[c]! -= (options.learningRate * gb[c]!) / rows;
  }

  const weights = new Float32Array(width * classes);
  const bias = new Float32Array(classes);
  for (let c = 0; c < classes; c++) {
    let folded = b[c]!;
    for (let f = 0; f < width; f++) {
      weights[f * classes + c] = w[f * classes + c]! / sd[f]!;
      folded -= (mean[f]! / sd[f]!) * w[f * classes + c]!;
    }
    bias[c] = folded;
  }
  return { width, classes, weights, bias };
}

/** The exported graph's arithmetic in float64: class probabilities, row-major [rows, classes]. */
export function predictSoftmax(model: LinearSoftmaxModel, features: ArrayLike<number>, rows: number): Float64Array {
  const { width, classes } = model;
  const out = new Float64Array(rows * classes);
  const logits = new Float64Array(classes);
  const p = new Float64Array(classes);
  for (let r = 0; r < rows; r++) {
    for (let c = 0; c < classes; c++) {
      let z = model.bias[c]!;
      for (let f = 0; f < width; f++) z += features[r * width + f]! * model.weights[f * classes + c]!;
      logits[c] = z;
    }
    softmaxInPlace(logits, p);
    out.set(p, r * classes);
  }
  return out;
}
