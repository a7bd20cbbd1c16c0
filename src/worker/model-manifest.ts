// The model card that travels with an ONNX file: how to encode a record for it, which output holds
// the fraud probability, its default decision thresholds and how it was built. The worker trusts the
// ONNX file only through this card (sha256, input/output names, feature width).
import { z } from 'zod';

const NumberFeatureSchema = z.strictObject({
  name: z.enum(['transaction_amount', 'hour_of_day', 'days_since_last_transaction']),
  encoding: z.literal('number').describe('the value itself, as float32'),
});

const BooleanFeatureSchema = z.strictObject({
  name: z.literal('card_present'),
  encoding: z.literal('boolean').describe('1 for true, 0 for false'),
});

const OneHotFeatureSchema = z
  .strictObject({
    name: z.literal('merchant_category'),
    encoding: z.literal('one_hot').describe('vocabulary.length + 1 columns: code i sets column i, any other value the unknown code'),
    vocabulary: z.array(z.string().min(1)).min(1),
    unknown_code: z.number().int().nonnegative(),
  })
  .refine((f) => f.unknown_code === f.vocabulary.length, {
    message: 'unknown_code must follow the vocabulary (its own column, after the known ones)',
    path: ['unknown_code'],
  })
  .refine((f) => new Set(f.vocabulary).size === f.vocabulary.length, {
    message: 'vocabulary has duplicates',
    path: ['vocabulary'],
  });

export const ModelFeatureSchema = z.union([NumberFeatureSchema, BooleanFeatureSchema, OneHotFeatureSchema]);
export type ModelFeature = z.infer<typeof ModelFeatureSchema>;

/** How many tensor columns a feature occupies. */
export function featureColumns(feature: ModelFeature): number {
  return feature.encoding === 'one_hot' ? feature.vocabulary.length + 1 : 1;
}

export const ModelInputSchema = z
  .strictObject({
    name: z.string().min(1).describe('the ONNX graph input'),
    dtype: z.literal('float32'),
    width: z.number().int().positive().describe('columns per row: the sum over features, in order'),
    features: z.array(ModelFeatureSchema).min(1).describe('in tensor column order'),
  })
  .refine((input) => input.features.reduce((sum, f) => sum + featureColumns(f), 0) === input.width, {
    message: 'width is not the number of columns the features encode to',
    path: ['width'],
  })
  .refine((input) => new Set(input.features.map((f) => f.name)).size === input.features.length, {
    message: 'a record field is encoded twice',
    path: ['features'],
  });
export type ModelInput = z.infer<typeof ModelInputSchema>;

export const Sha256Schema = z.string().regex(/^[0-9a-f]{64}$/, 'a lowercase hex sha256');

export const ModelManifestSchema = z.strictObject({
  name: z.literal('fraud'),
  version: z.string().min(1).describe('returned to clients as model_version'),
  description: z.string(),
  file: z.string().min(1).describe('the ONNX file, relative to the manifest'),
  bytes: z.number().int().positive(),
  sha256: Sha256Schema,
  input: ModelInputSchema,
  output: z.strictObject({
    name: z.string().min(1).describe('the ONNX output holding class probabilities, float32 [rows, classes]'),
    probability_column: z.number().int().nonnegative().describe('the column of the fraud class'),
  }),
  thresholds: z
    .strictObject({
      approve: z.number().gt(0).lt(1).describe('approve below this probability'),
      review: z.number().gt(0).lt(1).describe('review below this probability, decline at or above it'),
    })
    .refine((t) => t.approve < t.review, { message: 'approve must be below review' }),
  metrics: z.strictObject({
    rows: z.number().int().positive().describe('held-out rows the metrics were measured on'),
    roc_auc: z.number().min(0).max(1),
    log_loss: z.number().nonnegative(),
    fraud_rate: z.number().min(0).max(1).describe('share of fraud among the held-out rows'),
    decisions: z
      .strictObject({
        approve: z.number().min(0).max(1),
        review: z.number().min(0).max(1),
        decline: z.number().min(0).max(1),
        fraud_caught: z.number().min(0).max(1).describe('share of held-out fraud sent to review or decline'),
      })
      .describe('share of held-out rows per decision at the default thresholds'),
  }),
  data: z.strictObject({
    generator: z.string(),
    seed: z.number().int(),
    rows: z.number().int().positive(),
    train_rows: z.number().int().positive(),
    holdout_rows: z.number().int().positive(),
    sha256: Sha256Schema.describe('of the generated CSV'),
  }),
  trainer: z.strictObject({
    algorithm: z.literal('gbdt-logistic'),
    trees: z.number().int().positive(),
    max_depth: z.number().int().positive(),
    learning_rate: z.number().positive(),
    min_leaf_size: z.number().int().positive(),
    max_bins: z.number().int().min(2).max(256),
    l2_regularization: z.number().nonnegative(),
  }),
});

export type ModelManifest = z.infer<typeof ModelManifestSchema>;
