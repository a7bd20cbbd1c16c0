// Scoring one staged bulk chunk with one model version, in either form a chunk takes: columns (a
// record-encoded version's encoder fed straight from them, decisions by its policy) or rows (any
// model's records through ModelVersion.run, each output by name). Both
// score in slices of a few ms and wait before each one for online work in hand (online-first.ts),
// so online batches, BullMQ's lock renewal and the stalled check run meanwhile. The caller holds a lease on the version throughout.
import { UnrecoverableError } from 'bullmq';
import { decisionCode, decodeChunk, encodeResults, type ChunkColumns } from '../shared/bulk-chunk.ts';
import type { ShadowEntry } from '../shared/shadow-stream.ts';
import type { SignatureRecord } from '../shared/model-signature.ts';
import { compareOutputs } from './shadow-scoring.ts';
import { decodeRowChunk, encodeRowResults } from '../shared/bulk-rows.ts';
import type { Decision } from '../shared/schemas/prediction.ts';
import type { ModelVersion } from './model-version.ts';
import type { WorkerMetrics } from './worker-metrics.ts';
import type { SliceSizer } from './online-first.ts';
import type { SliceRunner } from './bulk-runner.ts';

export type ChunkScoring = {
  model: ModelVersion;
  /** Where each slice runs: the bulk thread, off the worker's event loop (bulk-runner.ts). */
  runner: SliceRunner;
  /** Rows per slice, by the time slices of this version take (online-first.ts). */
  slices: SliceSizer;
  metrics: WorkerMetrics;
  /** Awaited before every slice: a turn of the event loop, and no online work in hand (OnlineFirst). */
  beforeSlice: () => Promise<unknown>;
};

/**
 * A chunk's encoded results, its rows, and the display version that scored them; and what a
 * shadow version compares with (compareChunk): the decoded input and the scores as they came.
 */
export type ScoredChunk = { results: Buffer; rows: number; displayVersion: string } & (
  | { form: 'columns'; columns: ChunkColumns; probabilities: Float32Array }
  | { form: 'rows'; records: SignatureRecord[]; outputs: Record<string, unknown>[]; ids: string[] | null }
);

/** One chunk's comparisons with a shadow version, per record in chunk order, or why there are none. */
export type ChunkComparison = Omit<ShadowEntry, 'answered' | 'shadow'> | { failed: 'records_not_valid_for_shadow'; records: number };

/**
 * Runs the chunk's rows [0, total) in slices sized by time: each slice waits for its turn, runs,
 * and teaches the sizer how long its rows took.
 */
async function inSlices(s: ChunkScoring, total: number, run: (from: number, to: number) => Promise<void>): Promise<void> {
  const labels = { model_name: s.model.name, model_version: String(s.model.version) };
  for (let from = 0; from < total;) {
    await s.beforeSlice();
    const to = Math.min(total, from + s.slices.rows());
    const started = performance.now();
    await run(from, to);
    const ms = performance.now() - started;
    s.slices.observe(to - from, ms);
    s.metrics.batchRecords.record(to - from, labels);
    s.metrics.inferenceDuration.record(ms / 1000, labels);
    from = to;
  }
}

export async function scoreColumnChunk(s: ChunkScoring, input: Buffer): Promise<ScoredChunk> {
  const { model } = s;
  const encoder = model.encoder;
  if (!encoder || !model.decision) {
    throw new UnrecoverableError(`model ${model.name} version ${model.version} has no record encoding and decision policy for columnar chunks`);
  }
  const columns = decodeChunk(input);

  const probabilities = new Float32Array(columns.length);
  await inSlices(s, columns.length, async (from, to) => {
    probabilities.set(await s.runner.scoreEncoded(model, encoder.encodeColumns(columns, from, to), to - from), from);
  });
  model.drift?.observe(probabilities);
  const decisions = new Uint8Array(columns.length);
  // The columnar results hold the approve / review / decline labels (bulk-chunk.ts).
  for (let i = 0; i < decisions.length; i++) decisions[i] = decisionCode(model.decide(probabilities[i]!) as Decision);
  const results = encodeResults({ length: columns.length, probabilities, decisions, ids: columns.ids });
  return { results, rows: columns.length, displayVersion: model.displayVersion, form: 'columns', columns, probabilities };
}

export async function scoreRowChunk(s: ChunkScoring, input: Buffer): Promise<ScoredChunk> {
  const { records, ids } = decodeRowChunk(input);
  const outputs: Record<string, unknown>[] = [];
  await inSlices(s, records.length, async (from, to) => {
    outputs.push(...(await s.runner.run(s.model, records.slice(from, to))));
  });
  s.model.observe(outputs);
  return {
    results: encodeRowResults({ outputs, ids }),
    rows: records.length,
    displayVersion: s.model.displayVersion,
    form: 'rows',
    records,
    outputs,
    ids,
  };
}

/**
 * Scores a chunk `answered` scored again with the shadow version (s.model), in slices like its
 * own, and compares record by record. Columns need a shadow that reads the same record fields;
 * rows are checked against the shadow's record schema when it takes other records.
 */
export async function compareChunk(s: ChunkScoring, answered: ModelVersion, scored: ScoredChunk): Promise<ChunkComparison> {
  const shadow = s.model;
  const sameRecords = shadow.recordSchema.key === answered.recordSchema.key;
  if (scored.form === 'columns') {
    const encoder = shadow.encoder;
    if (!sameRecords || !encoder || !shadow.decision) return { failed: 'records_not_valid_for_shadow', records: scored.rows };
    const { columns, probabilities } = scored;
    const theirs = new Float32Array(columns.length);
    await inSlices(s, columns.length, async (from, to) => {
      theirs.set(await s.runner.scoreEncoded(shadow, encoder.encodeColumns(columns, from, to), to - from), from);
    });
    shadow.drift?.observe(theirs);
    const agree: (0 | 1)[] = new Array(columns.length);
    const difference: number[] = new Array(columns.length);
    for (let i = 0; i < columns.length; i++) {
      agree[i] = answered.decide(probabilities[i]!) === shadow.decide(theirs[i]!) ? 1 : 0;
      difference[i] = Math.abs(probabilities[i]! - theirs[i]!);
    }
    return { agree, difference, ...(columns.ids && { ids: columns.ids.map((id) => id || null) }) };
  }
  const { records, outputs } = scored;
  if (!sameRecords && !records.every((r) => shadow.recordSchema.schema.safeParse(r).success)) {
    return { failed: 'records_not_valid_for_shadow', records: records.length };
  }
  const theirs: Record<string, unknown>[] = [];
  await inSlices(s, records.length, async (from, to) => {
    theirs.push(...(await s.runner.run(shadow, records.slice(from, to))));
  });
  shadow.observe(theirs);
  const { agree, difference } = compareOutputs(answered, outputs, shadow, theirs);
  return { agree, difference, ...(scored.ids && { ids: scored.ids.map((id) => id || null) }) };
}
