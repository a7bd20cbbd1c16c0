// The `scoring` CLI's own two variables. The CLI is a client of the service, not the service: it
// reads its environment here, as each service process does through src/shared/config.ts, so the
// installable package (packages/client) carries neither the service's schema nor its variables.
// --url and --api-key override them.
import { z } from 'zod';
import { UsageError } from './exit-codes.ts';

const CliEnvSchema = z.object({
  SCORING_URL: z
    .url({ protocol: /^https?$/ })
    .default('http://127.0.0.1:8080')
    .describe('Base URL of the api'),
  SCORING_API_KEY: z.string().optional().describe("A key of the api's API_KEYS"),
});

export type CliConfig = { url: string; apiKey: string | undefined };

/** Every variable the CLI reads. */
export const CLI_ENV_VARIABLES: readonly string[] = Object.keys(CliEnvSchema.shape);

/** @throws UsageError (exit 2) naming every bad variable. */
export function loadCliConfig(env: NodeJS.ProcessEnv = process.env): CliConfig {
  const parsed = CliEnvSchema.safeParse(env);
  if (!parsed.success) {
    const lines = parsed.error.issues.map((i) => `  ${i.path.join('.')}: ${i.message}`);
    throw new UsageError(`Invalid environment variables:\n${lines.join('\n')}`);
  }
  return { url: parsed.data.SCORING_URL, apiKey: parsed.data.SCORING_API_KEY || undefined };
}
