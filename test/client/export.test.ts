// The client is the package's `./client` subpath: what a script in (or linked to) this repository imports.
import { test } from 'node:test';
import assert from 'node:assert/strict';
import { ScoringClient, ScoringError } from 'scoring-service/client';
import * as direct from '../../src/client/index.ts';

test("'scoring-service/client' is src/client/index.ts", () => {
  assert.equal(ScoringClient, direct.ScoringClient);
  assert.equal(ScoringError, direct.ScoringError);
});
