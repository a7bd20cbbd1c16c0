// The optional manifest.json beside a repository's model.onnx: the one manifest schema of every
// model. It adds only what a graph cannot say: a display version, the file's size and sha256, a
// record encoding (the fields records carry and how they become the input tensor), the output a
// record-encoded model answers with and under which field, a decision policy, and class labels.
// A model build may add its own card (description, metrics, data, trainer); they are kept as written.
import { z } from 'zod';
import { RecordFieldSchema, fieldColumns } from '../shared/record-fields.ts';
import { ScoreReferenceSchema } from './score-drift.ts';

export const MODEL_FILE = 'model.onnx';
export const MANIFEST_FILE = 'manifest.json';

export const Sha256Schema = z.string().regex(/^[0-9a-f]{64}$/, 'a lowercase hex sha256');

/** A record encoding: records carry these fields, encoded in order into one float32 input [N, width]. */
export const RecordEncodingSchema = z
  .strictObject({
    name: z.string().min(1).describe('the ONNX graph input'),
    dtype: z.literal('float32'),
    width: z.number().int().positive().describe('columns per row: the sum over features, in order'),
    features: z.array(RecordFieldSchema).min(1).describe('in tensor column order'),
    record: z
      .array(z.string().min(1))
      .optional()
      .describe("the features' names in the order a record lists them (docs, protocol tensors); column order when absent"),
  })
  .refine(
    (input) =>
      !input.record ||
      [...input.record].sort().join() ===
        input.features
          .map((f) => f.name)
          .sort()
          .join(),
    {
      message: 'record must list every feature once',
      path: ['record'],
    },
  )
  .refine((input) => input.features.reduce((sum, f) => sum + fieldColumns(f), 0) === input.width, {
    message: 'width is not the number of columns the features encode to',
    path: ['width'],
  })
  .refine((input) => new Set(input.features.map((f) => f.name)).size === input.features.length, {
    message: 'a record field is encoded twice',
    path: ['features'],
  });
export type RecordEncoding = z.infer<typeof RecordEncodingSchema>;

/** The encoding's fields in the order a record lists them. */
export function recordOrder(input: RecordEncoding): RecordEncoding['features'] {
  if (!input.record) return input.features;
  const byName = new Map(input.features.map((f) => [f.name, f]));
  return input.record.map((name) => byName.get(name)!);
}

const DecisionPolicySchema = z
  .strictObject({
    output: z.string().min(1).describe('a float output of shape [N] or [N,k]'),
    column: z.number().int().nonnegative().default(0).describe('the column of the probability, for [N,k]'),
    thresholds: z
      .array(z.strictObject({ below: z.number(), label: z.string().min(1) }))
      .min(1)
      .describe('ascending: the first whose `below` the value is under gives the label'),
    otherwise: z.string().min(1).describe('the label at or above the last threshold'),
  })
  .refine((p) => p.thresholds.every((t, i) => i === 0 || p.thresholds[i - 1]!.below < t.below), {
    message: 'thresholds must ascend',
    path: ['thresholds'],
  });
export type DecisionPolicy = z.infer<typeof DecisionPolicySchema>;

const ThresholdsSchema = z.strictObject({
  approve: z.number().gt(0).lt(1).describe('approve below this probability'),
  review: z.number().gt(0).lt(1).describe('review below this probability, decline at or above it'),
});
/** The approve / review / decline form of a decision policy, and what APPROVE_THRESHOLD / REVIEW_THRESHOLD override. */
export type Thresholds = z.infer<typeof ThresholdsSchema>;

export const ManifestSchema = z
  .looseObject({
    name: z.string().min(1).optional().describe('when given, the directory name it must sit in'),
    version: z.string().min(1).optional().describe('display version, returned as model_version'),
    description: z.string().optional(),
    file: z.literal(MODEL_FILE).optional(),
    bytes: z.number().int().positive().optional(),
    sha256: Sha256Schema.optional(),
    input: RecordEncodingSchema.optional().describe("a record encoding: the records are these fields, not the graph's inputs"),
    output: z
      .strictObject({
        name: z.string().min(1).describe('the ONNX output holding class probabilities, float32 [rows, classes]'),
        probability_column: z.number().int().nonnegative().describe('the column of the class scored'),
        field: z.string().min(1).optional().describe('the field a reply gives that probability under; a record encoding needs it'),
      })
      .optional()
      .describe('the probability output a record-encoded model answers with, and the thresholds apply to'),
    thresholds: ThresholdsSchema.refine((t) => t.approve < t.review, { message: 'approve must be below review' })
      .optional()
      .describe('the approve / review / decline form of a decision policy'),
    decision: DecisionPolicySchema.optional(),
    score_reference: ScoreReferenceSchema.optional(),
    class_labels: z
      .record(z.string().min(1), z.array(z.string().min(1)).min(1))
      .optional()
      .describe('per output: the name of class i, for an integer class output or the columns of a probability output'),
  })
  .refine((m) => !(m.thresholds && m.decision), { message: 'give thresholds or decision, not both', path: ['decision'] })
  .refine((m) => !m.thresholds || m.output, { message: 'thresholds need output (the probability output)', path: ['output'] })
  .refine((m) => !m.input || m.output?.field, {
    message: 'a record encoding (input) needs output, with the field its probability is answered under',
    path: ['input'],
  });
export type Manifest = z.infer<typeof ManifestSchema>;

/**
 * The decision policy in its general form, whichever form the manifest wrote it in. `override`
 * (APPROVE_THRESHOLD / REVIEW_THRESHOLD, keys absent when unset) replaces the approve / review
 * form's thresholds: this is the one place they meet the manifest's. Throws a RangeError when the
 * merge leaves approve above review.
 */
export function decisionPolicy(manifest: Manifest, override: Partial<Thresholds> = {}): DecisionPolicy | undefined {
  if (manifest.decision) return manifest.decision;
  if (manifest.thresholds && manifest.output) {
    const t = { ...manifest.thresholds, ...override };
    if (t.approve > t.review) {
      throw new RangeError(`APPROVE_THRESHOLD ${t.approve} must not exceed REVIEW_THRESHOLD ${t.review} (manifest and config merged)`);
    }
    return {
      output: manifest.output.name,
      column: manifest.output.probability_column,
      thresholds: [
        { below: t.approve, label: 'approve' },
        { below: t.review, label: 'review' },
      ],
      otherwise: 'decline',
    };
  }
  return undefined;
}

/** The one decision rule: the label of the first threshold the value is below, else `otherwise`. */
export function applyDecision(policy: DecisionPolicy, probability: number): string {
  for (const t of policy.thresholds) if (probability < t.below) return t.label;
  return policy.otherwise;
}
