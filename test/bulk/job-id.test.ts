// Job ids: unguessable, URL-safe, and never read as a command-line option.
import { test } from 'node:test';
import assert from 'node:assert/strict';
import { newJobId } from '../../src/api/bulk/submit.ts';

test("job ids are 22 base64url characters and never start with '-'", () => {
  const ids = Array.from({ length: 20_000 }, newJobId);
  for (const id of ids) assert.match(id, /^[A-Za-z0-9_][A-Za-z0-9_-]{21}$/);
  assert.equal(new Set(ids).size, ids.length);
  // A leading '-' would come once in 64 ids if it were not ruled out: the rule is exercised here.
  assert.ok(ids.some((id) => id.includes('-')));
});
