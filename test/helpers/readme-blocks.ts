// The README's sh blocks, run as a reader would: in bash, failing on the first failing command,
// against a test's api (the only change: localhost:8080 becomes its port), with `npx scoring`
// the repository's CLI.
import assert from 'node:assert/strict';
import { execFile } from 'node:child_process';
import { readFileSync } from 'node:fs';
import { dirname, join } from 'node:path';
import { promisify } from 'node:util';
import { fileURLToPath } from 'node:url';

const ROOT = fileURLToPath(new URL('../..', import.meta.url));
const README = readFileSync(join(ROOT, 'README.md'), 'utf8');
const run = promisify(execFile);

/** The README's sh blocks, in order. */
export const SH_BLOCKS = [...README.matchAll(/```sh\n([\s\S]*?)```/g)].map((m) => m[1]!);

/** The one sh block that holds `containing`. */
export function block(containing: string): string {
  const found = SH_BLOCKS.filter((b) => b.includes(containing));
  assert.equal(found.length, 1, `the README has one sh block with ${containing}`);
  return found[0]!;
}

/** Runs a block in `cwd` against the api at `apiUrl`; resolves with its stdout. */
export async function runBlock(script: string, cwd: string, apiUrl: string): Promise<string> {
  const port = new URL(apiUrl).port;
  const adapted = script
    .replaceAll('localhost:8080', `localhost:${port}`)
    // npx finds the bin from the repository; here the scratch folder is the working directory.
    .replaceAll('npx scoring', `node ${join(ROOT, 'src/cli/main.ts')}`);
  const { stdout } = await run('bash', ['-euo', 'pipefail', '-c', adapted], {
    cwd,
    env: { ...process.env, PATH: `${dirname(process.execPath)}:${process.env.PATH ?? ''}`, SCORING_URL: apiUrl },
    maxBuffer: 64 * 1024 * 1024,
  });
  return stdout;
}
