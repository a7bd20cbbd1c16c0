// Builds the default fraud model from nothing: generate the reference data, train on the first
// rows, measure on the held-out rows, export ONNX and describe it in a manifest. Pure (no file
// writes) so tests can rebuild and compare bytes; scripts/model/build.ts writes the result.
import { createHash } from 'node:crypto';
import { createFeatureEncoder } from '../../src/worker/features.ts';
import { ManifestSchema } from '../../src/worker/manifest.ts';
import { FraudCardSchema, type FraudCard } from './fraud-card.ts';
import { fraudModelInput } from './feature-spec.ts';
import { REFERENCE_DATA, fraudRowsToCsv, generateFraudRows } from './fraud-data.ts';
import { DEFAULT_GBDT_OPTIONS, predictGbdtProbability, trainGbdt, type GbdtModel, type GbdtOptions } from './gbdt.ts';
import { logLoss, rocAuc } from './metrics.ts';
import { exportGbdtToOnnx } from './onnx-export.ts';
import { scoreReference } from '../../src/worker/score-drift.ts';

export const MODEL_SEMVER = '1.0.0';
export const MODEL_FILE = 'model.onnx';
const PROBABILITY_OUTPUT = 'probabilities';
const LABEL_OUTPUT = 'label';

// Share of held-out traffic the default thresholds let through and send to a person: most
// transactions approve untouched, a manual-review queue of about 9 % of traffic, and the top 1 %
// of scores (where fraud is several times more likely than not) declined outright.
const APPROVE_QUANTILE = 0.9;
const REVIEW_QUANTILE = 0.99;

export interface BuildFraudModelOptions {
  seed?: number;
  trainer?: Partial<GbdtOptions>;
}

export interface FraudModelBuild {
  onnx: Uint8Array;
  manifest: FraudCard;
  model: GbdtModel;
  trainSeconds: number;
}

function sha256(data: string | Uint8Array): string {
  return createHash('sha256').update(data).digest('hex');
}

/** Rounds to two significant digits so thresholds read as operators would set them (0.031, 0.21). */
function roundThreshold(x: number): number {
  return Number(x.toPrecision(2));
}

function quantile(sorted: Float64Array, q: number): number {
  return sorted[Math.min(sorted.length - 1, Math.floor(q * sorted.length))]!;
}

/**
 * Generates the data (checking the reference sha256 when the seed is the reference one), trains,
 * evaluates on the held-out rows and exports. Deterministic: the same options give the same bytes.
 */
export function buildFraudModel(options: BuildFraudModelOptions = {}): FraudModelBuild {
  const seed = options.seed ?? REFERENCE_DATA.seed;
  const trainer: GbdtOptions = { ...DEFAULT_GBDT_OPTIONS, ...options.trainer };
  const { rows: rowCount, trainRows, holdoutRows } = REFERENCE_DATA;

  const rows = generateFraudRows(seed, rowCount);
  const dataSha256 = sha256(fraudRowsToCsv(rows));
  if (seed === REFERENCE_DATA.seed && dataSha256 !== REFERENCE_DATA.sha256) {
    throw new Error(`generated data has sha256 ${dataSha256}, the reference is ${REFERENCE_DATA.sha256}`);
  }
  const train = rows.slice(0, trainRows);
  const holdout = rows.slice(trainRows, trainRows + holdoutRows);

  const input = fraudModelInput(train);
  const encoder = createFeatureEncoder(input);
  const started = performance.now();
  const model = trainGbdt(
    encoder.encode(train),
    Uint8Array.from(train, (r) => r.is_fraud),
    encoder.width,
    trainer,
  );
  const trainSeconds = (performance.now() - started) / 1000;

  const labels = Uint8Array.from(holdout, (r) => r.is_fraud);
  const scores = predictGbdtProbability(model, encoder.encode(holdout), holdout.length);
  const fraudCount = labels.reduce((sum, y) => sum + y, 0);
  const sorted = Float64Array.from(scores).sort();
  const approve = roundThreshold(quantile(sorted, APPROVE_QUANTILE));
  const review = roundThreshold(quantile(sorted, REVIEW_QUANTILE));
  let approved = 0;
  let reviewed = 0;
  let fraudFlagged = 0;
  for (let i = 0; i < scores.length; i++) {
    const p = scores[i]!;
    if (p < approve) approved++;
    else {
      if (p < review) reviewed++;
      fraudFlagged += labels[i]!;
    }
  }

  const onnx = exportGbdtToOnnx(model, {
    inputName: input.name,
    probabilityName: PROBABILITY_OUTPUT,
    labelName: LABEL_OUTPUT,
    docString: `Fraud probability from ${trainer.trees} gradient-boosted trees; see manifest.json.`,
  });
  const onnxSha256 = sha256(onnx);

  const manifest = FraudCardSchema.parse({
    name: 'fraud',
    version: `fraud-gbdt-${MODEL_SEMVER}+${onnxSha256.slice(0, 8)}`,
    description:
      'Gradient-boosted trees (logistic loss) on the synthetic card transactions of fraud-data.md. ' +
      `Thresholds come from the held-out score distribution: approve below its ${APPROVE_QUANTILE * 100}th ` +
      `percentile, review below its ${REVIEW_QUANTILE * 100}th, decline above, rounded to two significant ` +
      'digits; metrics.decisions shows the resulting shares and the fraud they catch.',
    file: MODEL_FILE,
    bytes: onnx.length,
    sha256: onnxSha256,
    input,
    output: { name: PROBABILITY_OUTPUT, probability_column: 1, field: 'fraud_probability' },
    thresholds: { approve, review },
    score_reference: scoreReference(scores),
    metrics: {
      rows: holdout.length,
      roc_auc: rocAuc(labels, scores),
      log_loss: logLoss(labels, scores),
      fraud_rate: fraudCount / holdout.length,
      decisions: {
        approve: approved / holdout.length,
        review: reviewed / holdout.length,
        decline: (holdout.length - approved - reviewed) / holdout.length,
        fraud_caught: fraudFlagged / fraudCount,
      },
    },
    data: {
      generator: 'scripts/model/fraud-data.ts',
      seed,
      rows: rowCount,
      train_rows: trainRows,
      holdout_rows: holdoutRows,
      sha256: dataSha256,
    },
    trainer: {
      algorithm: 'gbdt-logistic',
      trees: trainer.trees,
      max_depth: trainer.maxDepth,
      learning_rate: trainer.learningRate,
      min_leaf_size: trainer.minLeafSize,
      max_bins: trainer.maxBins,
      l2_regularization: trainer.l2,
    },
  });
  // The card must be a manifest the service loads as it is.
  ManifestSchema.parse(manifest);
  return { onnx, manifest, model, trainSeconds };
}

/** The manifest as written to disk: stable key order from the schema, 2-space JSON, final newline. */
export function serializeManifest(manifest: FraudCard): string {
  return JSON.stringify(manifest, null, 2) + '\n';
}
