// One record of the default fraud model, as a client sends it. The same schema validates
// /predict, /predict/batch and every row of a bulk job, and describes them in OpenAPI.
import { z } from 'zod';

export const FraudRecordSchema = z
  .strictObject({
    transaction_amount: z.number().positive().finite().describe('Amount of the transaction, > 0'),
    merchant_category: z.string().min(1).max(64).describe('Merchant category; one the model has not seen is scored as unknown, not rejected'),
    card_present: z.boolean(),
    hour_of_day: z.number().int().min(0).max(23),
    days_since_last_transaction: z.number().min(0).finite(),
  })
  .meta({ id: 'PredictRequest' });

export type FraudRecord = z.infer<typeof FraudRecordSchema>;

/** A bulk record may carry the client's `id`, echoed back with its result. */
export const BulkRecordSchema = FraudRecordSchema.extend({
  id: z.string().min(1).max(128).optional(),
}).meta({ id: 'BulkRecord' });

export type BulkRecord = z.infer<typeof BulkRecordSchema>;
