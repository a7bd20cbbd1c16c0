// routing.json's shape, and the summary GET /models/{name}/shadow answers with: contract schemas,
// shared by the service and the client (src/shared/routing.ts routes by them).
import { z } from 'zod';

const SplitSchema = z.strictObject({
  version: z.number().int().positive().describe('The version this share of calls goes to'),
  percent: z.number().min(0).max(100).describe('The share of calls, 0–100'),
});

export const RoutingSchema = z
  .strictObject({
    canary: SplitSchema.optional().describe('This share of calls naming no version is answered by this version instead of the champion'),
    shadow: SplitSchema.optional().describe('This share of calls naming no version is also scored by this version, after the caller is answered'),
  })
  .meta({ id: 'Routing' });
export type Routing = z.infer<typeof RoutingSchema>;

export const ShadowPairSchema = z
  .object({
    answered_version: z.number().int().describe('The version that answered the callers'),
    shadow_version: z.number().int(),
    compared: z.number().int().describe('Records compared'),
    agreement: z.number().nullable().describe('Share of compared records whose decision (or label) agrees; null when the outputs have neither'),
    mean_difference: z.number().nullable().describe('Mean |score difference|; null when the outputs have no score'),
    p99_difference: z.number().nullable(),
  })
  .meta({ id: 'ShadowPair' });

export const ShadowSummarySchema = z
  .object({
    model_name: z.string(),
    window: z.number().int().describe('Pairs read: the newest, up to SHADOW_STREAM_LENGTH'),
    pairs: z.array(ShadowPairSchema),
  })
  .meta({ id: 'ShadowSummary' });
export type ShadowSummary = z.infer<typeof ShadowSummarySchema>;
