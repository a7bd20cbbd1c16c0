// Bulk slices on the bulk thread (src/worker/bulk-runner.ts): the same scores as the main thread's
// own session, bit for bit, in both chunk forms; the thread runs at its own lower priority while
// the process keeps its own; a slice that fails rejects with the model's error and the thread
// serves the next one; a version is opened there once and dropped when the main thread's copy closes.
import { test, describe, before, after } from 'node:test';
import assert from 'node:assert/strict';
import { readFileSync, readdirSync } from 'node:fs';
import { getPriority } from 'node:os';
import { setImmediate } from 'node:timers/promises';
import { generateFraudRecords } from '../../scripts/model/fraud-data.ts';
import { ChunkBuilder, decodeChunk } from '../../src/shared/bulk-chunk.ts';
import { BulkRunner } from '../../src/worker/bulk-runner.ts';
import { loadModelVersion, type ModelVersion } from '../../src/worker/model-version.ts';
import { createLogger } from '../../src/shared/logger.ts';

const FRAUD = new URL('../../models/fraud/1/', import.meta.url).pathname;
const SPECIES = new URL('../../models/species/1/', import.meta.url).pathname;
const RECORDS = generateFraudRecords(5, 2_000);

/** The nice value of each thread of this process named `name` (the kernel's view, /proc/self/task). */
function threadNices(name: string): number[] {
  return readdirSync('/proc/self/task')
    .filter((tid) => readFileSync(`/proc/self/task/${tid}/comm`, 'utf8').trim() === name)
    .map((tid) => Number(readFileSync(`/proc/self/task/${tid}/stat`, 'utf8').split(') ')[1]!.split(' ')[16]));
}

describe('the bulk thread', () => {
  let fraud: ModelVersion;
  let species: ModelVersion;
  let runner: BulkRunner;
  before(async () => {
    [fraud, species] = await Promise.all([loadModelVersion(FRAUD, 'fraud', 1), loadModelVersion(SPECIES, 'species', 1)]);
    runner = new BulkRunner({ nice: 10 }, createLogger('test', 'silent', false));
  });
  after(async () => {
    await runner.close();
    await Promise.all([fraud.retire(), species.retire()]);
  });

  test('columns: the same float32 probabilities as the main thread, at nice 10 while the process stays at its own', async () => {
    const builder = new ChunkBuilder(RECORDS.length);
    for (const r of RECORDS) builder.push(r);
    const columns = decodeChunk(builder.encode());
    const encoder = fraud.encoder!;
    const here = await fraud.scoreEncoded(encoder.encodeColumns(columns, 0, columns.length), columns.length);
    const there = await runner.scoreEncoded(fraud, encoder.encodeColumns(columns, 0, columns.length), columns.length);
    assert.deepEqual(there, here);
    assert.deepEqual(threadNices('WorkerThread'), [10]);
    assert.equal(getPriority(), 0);
  });

  test('rows: each output by name, decision and labels applied, as ModelVersion.run gives them', async () => {
    assert.deepEqual(await runner.run(fraud, RECORDS), await fraud.run(RECORDS));
    const flowers = [{ measurements: [5.1, 3.5, 1.4, 0.2] }, { measurements: [6.7, 3.0, 5.2, 2.3] }];
    assert.deepEqual(await runner.run(species, flowers), await species.run(flowers));
  });

  test('a slice that fails rejects with the model’s error, and the thread scores the next one', async () => {
    await assert.rejects(runner.scoreEncoded(fraud, new Float32Array(5), 3), {
      name: 'RangeError',
      message: /features hold 5 values, expected 3 rows/,
    });
    const width = fraud.encoder!.width;
    assert.equal((await runner.scoreEncoded(fraud, new Float32Array(width * 2), 2)).length, 2);
  });

  test('a version is opened in the thread once, and dropped there when the main thread’s copy closes', async () => {
    const copy = await loadModelVersion(FRAUD, 'fraud', 1);
    const width = copy.encoder!.width;
    const before = runner.versionsHeld;
    await runner.scoreEncoded(copy, new Float32Array(width), 1);
    await runner.scoreEncoded(copy, new Float32Array(width), 1);
    assert.equal(runner.versionsHeld, before + 1);
    await copy.retire();
    await setImmediate();
    assert.equal(runner.versionsHeld, before);
  });
});
