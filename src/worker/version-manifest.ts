// The optional manifest.json beside a repository's model.onnx. It adds only what a graph cannot
// say: a display version, a decision policy for a probability output, a record encoding (fraud's
// features) and class labels. The fraud manifest (model-manifest.ts) is one of these, read as is.
import { z } from 'zod';
import { ModelInputSchema, Sha256Schema } from './model-manifest.ts';

export const MODEL_FILE = 'model.onnx';

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

export const VersionManifestSchema = z
  .looseObject({
    name: z.string().min(1).optional().describe('when given, the directory name it must sit in'),
    version: z.string().min(1).optional().describe('display version, returned as model_version'),
    description: z.string().optional(),
    file: z.literal(MODEL_FILE).optional(),
    bytes: z.number().int().positive().optional(),
    sha256: Sha256Schema.optional(),
    input: ModelInputSchema.optional().describe("a record encoding: the records are these fields, not the graph's inputs"),
    output: z
      .strictObject({ name: z.string().min(1), probability_column: z.number().int().nonnegative() })
      .optional()
      .describe("fraud's form: the probability output the thresholds apply to"),
    thresholds: z
      .strictObject({ approve: z.number().gt(0).lt(1), review: z.number().gt(0).lt(1) })
      .refine((t) => t.approve < t.review, { message: 'approve must be below review' })
      .optional()
      .describe("fraud's form of a decision policy: approve / review / decline"),
    decision: DecisionPolicySchema.optional(),
    class_labels: z
      .record(z.string().min(1), z.array(z.string().min(1)).min(1))
      .optional()
      .describe('per output: the name of class i, for an integer class output or the columns of a probability output'),
  })
  .refine((m) => !(m.thresholds && m.decision), { message: 'give thresholds or decision, not both', path: ['decision'] })
  .refine((m) => !m.thresholds || m.output, { message: 'thresholds need output (the probability output)', path: ['output'] })
  .refine((m) => !m.input || (m.output && m.thresholds), {
    message: 'a record encoding (input) needs output and thresholds, as the fraud manifest has',
    path: ['input'],
  });
export type VersionManifest = z.infer<typeof VersionManifestSchema>;

/** The decision policy in its general form, whichever form the manifest wrote it in. */
export function decisionPolicy(manifest: VersionManifest): DecisionPolicy | undefined {
  if (manifest.decision) return manifest.decision;
  if (manifest.thresholds && manifest.output) {
    return {
      output: manifest.output.name,
      column: manifest.output.probability_column,
      thresholds: [
        { below: manifest.thresholds.approve, label: 'approve' },
        { below: manifest.thresholds.review, label: 'review' },
      ],
      otherwise: 'decline',
    };
  }
  return undefined;
}

export function applyDecision(policy: DecisionPolicy, probability: number): string {
  for (const t of policy.thresholds) if (probability < t.below) return t.label;
  return policy.otherwise;
}
