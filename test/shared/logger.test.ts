// Logs for a person on a terminal (pino-pretty), JSON lines for everything else. The terminal
// is a real pseudo-terminal (util-linux `script`), the pipe a real pipe.
import { test } from 'node:test';
import assert from 'node:assert/strict';
import { execFile } from 'node:child_process';
import { promisify, stripVTControlCharacters } from 'node:util';
import { fileURLToPath } from 'node:url';

const run = promisify(execFile);
const LOGGER = fileURLToPath(new URL('../../src/shared/logger.ts', import.meta.url));
const PROGRAM = `import { createLogger } from ${JSON.stringify(LOGGER)}; createLogger('api', 'info').info({ job_id: 'j1' }, 'bulk job accepted');`;

test('on a pipe: one JSON object per line', async () => {
  const { stdout } = await run(process.execPath, ['--input-type=module', '-e', PROGRAM]);
  const line = JSON.parse(stdout.trim()) as Record<string, unknown>;
  assert.equal(line.msg, 'bulk job accepted');
  assert.equal(line.service, 'api');
  assert.equal(line.job_id, 'j1');
});

test('on a terminal: pino-pretty lines, no JSON', async () => {
  const command = [process.execPath, '--input-type=module', '-e', PROGRAM].map((a) => `'${a.replaceAll("'", "'\\''")}'`).join(' ');
  const { stdout } = await run('script', ['-qec', command, '/dev/null']);
  const text = stripVTControlCharacters(stdout);
  assert.match(text, /INFO.*api: bulk job accepted/);
  assert.match(text, /job_id: "j1"/);
  assert.doesNotMatch(text, /\{"level"/);
});
