// What a client gets back from online scoring.
import { z } from 'zod';
import { FraudRecordSchema } from './record.ts';

export const DECISIONS = ['approve', 'review', 'decline'] as const;
export const DecisionSchema = z.enum(DECISIONS);
export type Decision = z.infer<typeof DecisionSchema>;

export const PredictionSchema = z
  .object({
    fraud_probability: z.number().min(0).max(1),
    decision: DecisionSchema,
    model_version: z.string(),
  })
  .meta({ id: 'PredictResponse' });
export type Prediction = z.infer<typeof PredictionSchema>;

/** The batch body; its bound on records is a setting (MAX_BATCH_RECORDS). */
export function batchRequestSchema(maxRecords: number) {
  return z.strictObject({ records: z.array(FraudRecordSchema).min(1).max(maxRecords) }).meta({ id: 'BatchRequest' });
}

export const BatchResponseSchema = z
  .object({
    results: z.array(PredictionSchema.omit({ model_version: true })),
    model_version: z.string(),
    latency_ms: z.number(),
  })
  .meta({ id: 'BatchResponse' });
export type BatchResponse = z.infer<typeof BatchResponseSchema>;

export const PredictQuerySchema = z.strictObject({
  timeout_ms: z.coerce
    .number()
    .int()
    .min(1)
    .max(30_000)
    .optional()
    .describe('How long to wait for a worker, in ms; PREDICT_TIMEOUT_MS when absent. Past it: 504 timeout'),
});
