// Scoring one staged bulk chunk with one model version, in either form a chunk takes: fraud's
// columns (the manifest's feature encoding fed straight from the columns, decisions by the
// thresholds) or rows (any model's records through ModelVersion.run, each output by name). Both
// score in slices and yield between them, so online batches, BullMQ's lock renewal and the
// stalled check run meanwhile. The caller holds a lease on the version throughout.
import { UnrecoverableError } from 'bullmq';
import { decisionCode, decodeChunk, encodeResults } from '../shared/bulk-chunk.ts';
import { decodeRowChunk, encodeRowResults } from '../shared/bulk-rows.ts';
import { decide, type Thresholds } from './decide.ts';
import { createFeatureEncoder, type FeatureEncoder } from './features.ts';
import type { ModelVersion } from './model-version.ts';
import type { WorkerMetrics } from './worker-metrics.ts';

export type ChunkScoring = {
  model: ModelVersion;
  /** Thresholds set in config, over the version's manifest. */
  thresholds: Partial<Thresholds>;
  sliceRows: number;
  metrics: WorkerMetrics;
  yieldTurn: () => Promise<unknown>;
};

/** A chunk's encoded results, its rows, and the display version that scored them. */
export type ScoredChunk = { results: Buffer; rows: number; displayVersion: string };

// One encoder per version's session: the encoding is its manifest's, fixed for the version's life.
const encoders = new WeakMap<ModelVersion, FeatureEncoder>();

async function timed<T>(s: ChunkScoring, rows: number, run: () => Promise<T>): Promise<T> {
  const started = performance.now();
  const out = await run();
  const labels = { model_name: s.model.name, model_version: String(s.model.version) };
  s.metrics.batchRecords.record(rows, labels);
  s.metrics.inferenceDuration.record((performance.now() - started) / 1000, labels);
  await s.yieldTurn();
  return out;
}

export async function scoreColumnChunk(s: ChunkScoring, input: Buffer): Promise<ScoredChunk> {
  const scoring = s.model.scoring;
  if (!scoring) throw new UnrecoverableError(`model ${s.model.name} version ${s.model.version} has no record encoding for fraud's columnar chunks`);
  let encoder = encoders.get(s.model);
  if (!encoder) encoders.set(s.model, (encoder = createFeatureEncoder(scoring.manifest.input)));
  const thresholds = { ...scoring.manifest.thresholds, ...s.thresholds };
  const columns = decodeChunk(input);

  const probabilities = new Float32Array(columns.length);
  for (let from = 0; from < columns.length; from += s.sliceRows) {
    const to = Math.min(columns.length, from + s.sliceRows);
    probabilities.set(await timed(s, to - from, () => scoring.scoreFeatures(encoder.encodeColumns(columns, from, to), to - from)), from);
  }
  const decisions = new Uint8Array(columns.length);
  for (let i = 0; i < decisions.length; i++) decisions[i] = decisionCode(decide(probabilities[i]!, thresholds));
  const results = encodeResults({ length: columns.length, probabilities, decisions, ids: columns.ids });
  return { results, rows: columns.length, displayVersion: scoring.version };
}

export async function scoreRowChunk(s: ChunkScoring, input: Buffer): Promise<ScoredChunk> {
  const { records, ids } = decodeRowChunk(input);
  const outputs: Record<string, unknown>[] = [];
  for (let from = 0; from < records.length; from += s.sliceRows) {
    const slice = records.slice(from, from + s.sliceRows);
    outputs.push(...(await timed(s, slice.length, () => s.model.run(slice))));
  }
  return { results: encodeRowResults({ outputs, ids }), rows: records.length, displayVersion: s.model.displayVersion };
}
