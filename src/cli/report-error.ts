// Turns what went wrong into stderr lines and an exit code. The service's own code, message and
// details are printed as they came; for a bulk file, the input lines the details name are shown.
import { createReadStream } from 'node:fs';
import { createInterface } from 'node:readline';
import { CommanderError } from 'commander';
import { JobEndedError, ResultsFileError, ScoringError, UnreachableError } from '../client/index.ts';
import { EXIT, UsageError } from './exit-codes.ts';

/** Input lines shown at most, so a file that is wrong everywhere does not flood the terminal. */
const MAX_LINES_SHOWN = 10;

export async function reportError(err: unknown, inputFile?: string): Promise<number> {
  if (err instanceof ScoringError) {
    console.error(`scoring: ${err.code}: ${err.message}`);
    for (const d of err.details) console.error(`  ${d.path}: ${d.message}`);
    if (inputFile) await showFailingLines(err, inputFile);
    if (err.retryAfterSeconds !== undefined) console.error(`  (the service asks to retry after ${err.retryAfterSeconds} s)`);
    return EXIT.failed;
  }
  if (err instanceof UnreachableError) {
    console.error(`scoring: ${err.message}. Set --url or SCORING_URL.`);
    return EXIT.unreachable;
  }
  if (err instanceof JobEndedError) {
    console.error(`scoring: ${err.message}`);
    return EXIT.failed;
  }
  if (err instanceof UsageError || err instanceof ResultsFileError) {
    console.error(`scoring: ${err.message}`);
    return EXIT.usage;
  }
  if (err instanceof CommanderError) return err.exitCode === 0 ? EXIT.ok : EXIT.usage;
  const code = (err as NodeJS.ErrnoException).code;
  if (code === 'ENOENT' || code === 'EISDIR' || code === 'EACCES') {
    console.error(`scoring: ${(err as Error).message}`);
    return EXIT.usage;
  }
  console.error(`scoring: ${err instanceof Error ? err.message : String(err)}`);
  return EXIT.failed;
}

/** The lines of the input file that the details name (`lines.2501.hour_of_day` → line 2501). */
async function showFailingLines(err: ScoringError, file: string): Promise<void> {
  const wanted = new Set<number>();
  for (const d of err.details) {
    // A CSV's header row is its line 1.
    const match = /^(?:lines\.(\d+)|header\b)/.exec(d.path);
    if (match && wanted.size < MAX_LINES_SHOWN) wanted.add(match[1] ? Number(match[1]) : 1);
  }
  if (wanted.size === 0) return;
  const last = Math.max(...wanted);
  const lines = createInterface({ input: createReadStream(file), crlfDelay: Infinity });
  let n = 0;
  try {
    for await (const text of lines) {
      n++;
      if (wanted.has(n)) console.error(`  line ${n}: ${text}`);
      if (n >= last) break;
    }
  } finally {
    lines.close();
  }
}
