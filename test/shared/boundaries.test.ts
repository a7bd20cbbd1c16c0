// The folder tree is the architecture: api and worker share only src/shared, and shared
// imports neither. This reads every import of src/ and holds the line.
import { test } from 'node:test';
import assert from 'node:assert/strict';
import { readdirSync, readFileSync } from 'node:fs';
import { dirname, join, relative, resolve } from 'node:path';
import { fileURLToPath } from 'node:url';

const SRC = fileURLToPath(new URL('../../src', import.meta.url));

function* sourceFiles(dir: string): Generator<string> {
  for (const entry of readdirSync(dir, { withFileTypes: true })) {
    const path = join(dir, entry.name);
    if (entry.isDirectory()) yield* sourceFiles(path);
    else if (path.endsWith('.ts')) yield path;
  }
}

function area(path: string): string {
  return relative(SRC, path).split('/')[0]!;
}

const ALLOWED: Record<string, string[]> = {
  shared: ['shared'],
  api: ['api', 'shared'],
  worker: ['worker', 'shared'],
  // The client is what a user of the service imports: the contract's types, never a process.
  client: ['client', 'shared'],
  cli: ['cli', 'client', 'shared'],
};

test('api and worker import only themselves and shared; shared imports neither; the client only shared', () => {
  const violations: string[] = [];
  for (const file of sourceFiles(SRC)) {
    const from = area(file);
    const text = readFileSync(file, 'utf8');
    for (const match of text.matchAll(/(?:from|import)\s*\(?\s*['"](\.[^'"]+)['"]/g)) {
      const target = resolve(dirname(file), match[1]!);
      if (!target.startsWith(SRC)) {
        violations.push(`${relative(SRC, file)} imports ${match[1]} from outside src/`);
        continue;
      }
      const allowed = ALLOWED[from];
      if (!allowed) violations.push(`${relative(SRC, file)}: src/${from} has no rule here`);
      else if (!allowed.includes(area(target))) violations.push(`${relative(SRC, file)} imports ${relative(SRC, target)}`);
    }
  }
  assert.deepEqual(violations, []);
});
