// Builds the second shipped model, with a signature unlike fraud's: a three-class softmax
// classifier on one float32 [N, 4] input, trained on generated flower measurements. Pure (no file
// writes), like build-fraud-model.ts; scripts/model/build.ts writes the result.
import { createHash } from 'node:crypto';
import { ManifestSchema } from '../../src/worker/manifest.ts';
import { exportLinearSoftmaxToOnnx, type LinearSoftmaxModel } from './onnx-export.ts';
import { DEFAULT_SOFTMAX_OPTIONS, predictSoftmax, trainSoftmax } from './softmax.ts';
import { MEASUREMENTS, SPECIES, generateSpeciesRows } from './species-data.ts';

export const SPECIES_MODEL = {
  name: 'species',
  semver: '1.0.0',
  seed: 7,
  rows: 3000,
  trainRows: 2400,
  inputName: 'measurements',
  probabilityName: 'probabilities',
  labelName: 'label',
} as const;

export interface SpeciesModelBuild {
  onnx: Uint8Array;
  /** manifest.json as written: validated against ManifestSchema, keys in this order. */
  manifest: Record<string, unknown>;
  /** The manifest as written to disk: 2-space JSON, final newline. */
  manifestText: string;
  model: LinearSoftmaxModel;
  holdout: { features: Float64Array; labels: Uint8Array; rows: number };
}

function sha256(data: Uint8Array): string {
  return createHash('sha256').update(data).digest('hex');
}

export function buildSpeciesModel(): SpeciesModelBuild {
  const spec = SPECIES_MODEL;
  const width = MEASUREMENTS.length;
  const data = generateSpeciesRows(spec.seed, spec.rows);
  const train = { features: data.features.subarray(0, spec.trainRows * width), labels: data.labels.subarray(0, spec.trainRows) };
  const holdout = {
    features: data.features.subarray(spec.trainRows * width),
    labels: data.labels.subarray(spec.trainRows),
    rows: spec.rows - spec.trainRows,
  };
  const model = trainSoftmax(train.features, train.labels, width, SPECIES.length);

  const probabilities = predictSoftmax(model, holdout.features, holdout.rows);
  let correct = 0;
  let logLoss = 0;
  for (let r = 0; r < holdout.rows; r++) {
    const row = probabilities.subarray(r * SPECIES.length, (r + 1) * SPECIES.length);
    const predicted = row.indexOf(Math.max(...row));
    if (predicted === holdout.labels[r]) correct++;
    logLoss -= Math.log(Math.max(1e-15, row[holdout.labels[r]!]!)) / holdout.rows;
  }

  const onnx = exportLinearSoftmaxToOnnx(model, {
    inputName: spec.inputName,
    probabilityName: spec.probabilityName,
    labelName: spec.labelName,
    docString: 'Species from four flower measurements (cm): a linear softmax classifier; see manifest.json.',
  });
  const onnxSha256 = sha256(onnx);
  const manifest = {
    name: spec.name,
    version: `species-softmax-${spec.semver}+${onnxSha256.slice(0, 8)}`,
    description:
      'Multinomial logistic regression on generated flower measurements (scripts/model/species-data.ts). ' +
      `Input ${spec.inputName}: float32 [N, ${width}], columns ${MEASUREMENTS.join(', ')} in cm. ` +
      `Outputs ${spec.probabilityName} (one per species) and ${spec.labelName} (the most probable species).`,
    file: 'model.onnx',
    bytes: onnx.length,
    sha256: onnxSha256,
    class_labels: { [spec.probabilityName]: [...SPECIES], [spec.labelName]: [...SPECIES] },
    input_columns: { [spec.inputName]: [...MEASUREMENTS] },
    metrics: { rows: holdout.rows, accuracy: correct / holdout.rows, log_loss: logLoss },
    data: {
      generator: 'scripts/model/species-data.ts',
      seed: spec.seed,
      rows: spec.rows,
      train_rows: spec.trainRows,
      holdout_rows: holdout.rows,
    },
    trainer: {
      algorithm: 'softmax-regression',
      iterations: DEFAULT_SOFTMAX_OPTIONS.iterations,
      learning_rate: DEFAULT_SOFTMAX_OPTIONS.learningRate,
      l2_regularization: DEFAULT_SOFTMAX_OPTIONS.l2,
    },
  };
  ManifestSchema.parse(manifest);
  return { onnx, manifest, manifestText: JSON.stringify(manifest, null, 2) + '\n', model, holdout };
}
