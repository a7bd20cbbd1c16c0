// The contract's error body, for OpenAPI; errors.ts builds it.
import { z } from 'zod';

export const ErrorBodySchema = z
  .object({
    error: z.object({
      code: z.string(),
      message: z.string(),
      details: z.array(z.object({ path: z.string(), message: z.string() })).optional(),
    }),
    request_id: z.string(),
  })
  .meta({ id: 'Error' });
