// The fraud model's card as the build writes it: the service's one manifest (src/worker/manifest.ts)
// plus how the model was made. Strict, and its key order is the order manifest.json is written in,
// so a rebuild can be compared byte for byte with the committed file.
import { z } from 'zod';
import { RecordEncodingSchema, Sha256Schema } from '../../src/worker/manifest.ts';
import { ScoreReferenceSchema } from '../../src/worker/score-drift.ts';

export const FraudCardSchema = z.strictObject({
  name: z.literal('fraud'),
  version: z.string().min(1).describe('returned to clients as model_version'),
  description: z.string(),
  file: z.literal('model.onnx'),
  bytes: z.number().int().positive(),
  sha256: Sha256Schema,
  input: RecordEncodingSchema,
  output: z.strictObject({ name: z.string().min(1), probability_column: z.number().int().nonnegative(), field: z.literal('fraud_probability') }),
  thresholds: z.strictObject({ approve: z.number().gt(0).lt(1), review: z.number().gt(0).lt(1) }),
  score_reference: ScoreReferenceSchema,
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
export type FraudCard = z.infer<typeof FraudCardSchema>;
