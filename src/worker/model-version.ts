// One version of one repository model, and the one loader of every model: its session, the
// signature read from the graph, what its optional manifest adds (a record encoding, a decision
// policy, class labels), and a lease count so the session is closed only after the work that holds
// it is done. Loading verifies the files against the manifest before any record is scored, so a
// missing, corrupt or mismatched model fails with a message naming the file and the problem.
import { createHash } from 'node:crypto';
import { readFile, stat } from 'node:fs/promises';
import { basename, join } from 'node:path';
import { InferenceSession, Tensor } from 'onnxruntime-node';
import { z } from 'zod';
import { recordSchemaFromSignature, type ModelSignature, type SignatureRecord } from '../shared/model-signature.ts';
import { recordSchemaFromFields } from '../shared/record-fields.ts';
import { createFeatureEncoder, type EncodedRecord, type FeatureEncoder } from './features.ts';
import { readSignature, type IgnoredOutput } from './model-signature.ts';
import { XGBOOST_FILES, XGBOOST_INPUT, XgboostRefusal, convertBooster, readBooster, type ConvertedBooster } from './xgboost-onnx.ts';
import { columnValues, concatFeatures, decodeOutputs, encodeParts, partRows, type InputPart } from './tensor-codec.ts';
import type { Columns } from '../shared/tensor-columns.ts';
import { ScoreDrift } from './score-drift.ts';
import {
  MANIFEST_FILE,
  MODEL_FILE,
  ManifestSchema,
  applyDecision,
  recordOrder,
  decisionPolicy,
  type DecisionPolicy,
  type Manifest,
  type RecordEncoding,
  type Thresholds,
} from './manifest.ts';

/** The per-record field a decision policy adds to the outputs. */
export const DECISION_FIELD = 'decision';

/**
 * The model cannot be used; `file` is the path at fault, `problem` what is wrong with it (without
 * the path, for callers: paths are for the log). Not retryable: the files must be fixed.
 */
export class ModelLoadError extends Error {
  readonly file: string;
  readonly problem: string;

  constructor(file: string, problem: string, options?: { cause?: unknown }) {
    super(`${file}: ${problem}`, options);
    this.name = this.constructor.name;
    this.file = file;
    this.problem = problem;
  }
}

export interface LoadModelOptions {
  /**
   * Threads one `session.run` may use. Default 1: throughput comes from batching and from running
   * more worker processes, and one thread keeps a run from competing with the event loop's core.
   */
  intraOpNumThreads?: number;
  /** APPROVE_THRESHOLD / REVIEW_THRESHOLD when set: they replace a manifest's approve / review thresholds. */
  thresholds?: Partial<Thresholds>;
  /** Scores score drift is taken over (SCORE_DRIFT_WINDOW); default 10,000. */
  driftWindow?: number;
}

/** A record encoding compiled for the session: records → one float32 input → one probability column. */
type Encoded = {
  encoder: FeatureEncoder;
  input: string;
  output: string;
  column: number;
  /** The field replies give the probability under. */
  field: string;
};

/** Records by named fields → one float32 input; the replies are the graph's outputs (a booster named by its feature_names). */
type FieldInput = { encoder: FeatureEncoder; input: string };

export class ModelVersion {
  readonly name: string;
  readonly version: number;
  /** What replies name as `model_version`: the manifest's version, else the version number. */
  readonly displayVersion: string;
  readonly dir: string;
  readonly signature: ModelSignature;
  readonly ignoredOutputs: readonly IgnoredOutput[];
  readonly manifest: Manifest | undefined;
  /** The manifest's policy with the config's thresholds merged in. */
  readonly decision: DecisionPolicy | undefined;
  readonly classLabels: Readonly<Record<string, readonly string[]>>;
  /**
   * Set when records are named fields, not the graph's inputs: the manifest's record encoding, or
   * a booster's feature_names (missing values allowed) when its manifest gives none.
   */
  readonly recordEncoding: RecordEncoding | undefined;
  readonly session: InferenceSession;
  /** Set when the manifest gives a score reference: the drift of the scores this copy observed. */
  readonly drift: ScoreDrift | undefined;
  readonly #encoded: Encoded | undefined;
  readonly #fieldInput: FieldInput | undefined;
  #recordSchema: { key: string; schema: z.ZodType } | undefined;
  #leases = 0;
  #retired = false;
  #closing: Promise<void> | undefined;
  readonly #closed = Promise.withResolvers<void>();

  /** What it was opened from: another thread opens the same version from it. */
  readonly source: VersionSource;

  constructor(init: {
    source: VersionSource;
    session: InferenceSession;
    signature: ModelSignature;
    ignoredOutputs: IgnoredOutput[];
    decision: DecisionPolicy | undefined;
  }) {
    const { source } = init;
    this.source = source;
    this.name = source.name;
    this.version = source.version;
    this.dir = source.dir;
    this.session = init.session;
    this.signature = init.signature;
    this.ignoredOutputs = init.ignoredOutputs;
    this.manifest = source.manifest;
    this.displayVersion = source.manifest?.version ?? String(source.version);
    this.decision = init.decision;
    this.classLabels = source.manifest?.class_labels ?? {};
    const m = source.manifest;
    const boosterFields = source.boosterFields;
    this.recordEncoding = m?.input ?? boosterFields;
    this.#encoded =
      m?.input && m.output?.field
        ? {
            encoder: createFeatureEncoder(m.input),
            input: m.input.name,
            output: m.output.name,
            column: m.output.probability_column,
            field: m.output.field,
          }
        : undefined;
    this.#fieldInput = boosterFields && { encoder: createFeatureEncoder(boosterFields), input: boosterFields.name };
    this.drift = m?.score_reference && new ScoreDrift(m.score_reference, source.options.driftWindow ?? 10_000);
  }

  /**
   * A record's score, from run()'s outputs: the probability the decision reads (the manifest's
   * probability field, else the policy's output column), or NaN when the version has none.
   */
  scoreOf(output: Record<string, unknown>): number {
    const field = this.#encoded?.field;
    const policy = this.decision;
    const value = field !== undefined ? output[field] : policy ? output[policy.output] : undefined;
    const p = Array.isArray(value) ? value[policy!.column] : value;
    return typeof p === 'number' ? p : NaN;
  }

  /**
   * Adds the scores of these outputs (run()'s, per record) to the drift. Called where the outputs
   * arrive on the main thread (online batches, bulk slices, shadow batches), whichever thread scored them.
   */
  observe(outputs: readonly Record<string, unknown>[]): void {
    const drift = this.drift;
    if (!drift) return;
    const scores = new Float64Array(outputs.length);
    for (let r = 0; r < outputs.length; r++) scores[r] = this.scoreOf(outputs[r]!);
    drift.observe(scores);
  }

  /**
   * The schema of one record, as the api checks calls for this version (its record fields, else
   * its graph's inputs), and a key that is equal for two versions taking the same records.
   */
  get recordSchema(): { key: string; schema: z.ZodType } {
    if (!this.#recordSchema) {
      const fields = this.recordEncoding && recordOrder(this.recordEncoding);
      this.#recordSchema = fields
        ? { key: JSON.stringify(fields), schema: recordSchemaFromFields(fields) }
        : { key: JSON.stringify(this.signature.inputs), schema: recordSchemaFromSignature(this.signature) };
    }
    return this.#recordSchema;
  }

  /** Leases held now. */
  get leases(): number {
    return this.#leases;
  }

  get retired(): boolean {
    return this.#retired;
  }

  /** Resolves once the session is closed (retired, and its last lease released). */
  get closed(): Promise<void> {
    return this.#closed.promise;
  }

  /** The encoder of a record-encoded version (bulk chunks feed it their columns); undefined otherwise. */
  get encoder(): FeatureEncoder | undefined {
    return this.#encoded?.encoder;
  }

  /** Takes a lease: the session stays open until every lease is released. Throws once retired. */
  acquire(): this {
    if (this.#retired) throw new Error(`model ${this.name} version ${this.version} is retired`);
    this.#leases++;
    return this;
  }

  release(): void {
    if (this.#leases === 0) throw new Error(`model ${this.name} version ${this.version}: release without a lease`);
    this.#leases--;
    if (this.#retired && this.#leases === 0) void this.#close();
  }

  /**
   * No new leases; the session closes when the last lease is released (at once when none is held).
   * Resolves when it is closed. Idempotent.
   */
  retire(): Promise<void> {
    this.#retired = true;
    if (this.#leases === 0) void this.#close();
    return this.#closed.promise;
  }

  // A release that fails leaves nothing to retry: the version is gone either way.
  #close(): Promise<void> {
    this.#closing ??= this.session.release().then(
      () => this.#closed.resolve(),
      () => this.#closed.resolve(),
    );
    return this.#closing;
  }

  /**
   * Scores `records` (valid for this version's record schema) in one session.run: per record, each
   * output by name (a record-encoded version: its probability under the manifest's field), class
   * labels applied, plus `decision` when the manifest gives a policy. Call it while holding a lease.
   */
  run(records: readonly SignatureRecord[]): Promise<Record<string, unknown>[]> {
    return this.runParts([records]);
  }

  /**
   * run() for a batch of calls, each its records or its columns (a protocol call's inputs, checked
   * against this version's metadata): one session.run over all of them, outputs in call order.
   */
  async runParts(parts: readonly InputPart[]): Promise<Record<string, unknown>[]> {
    if (this.#closing) throw new Error(`model ${this.name} version ${this.version} is closed`);
    const rows = parts.reduce((n, p) => n + partRows(p), 0);
    if (rows === 0) return [];
    const encoded = this.#encoded;
    if (encoded) {
      const features = concatFeatures(
        parts.map((p) => (Array.isArray(p) ? encoded.encoder.encode(p) : encoded.encoder.encodeFields((p as Columns).inputs, (p as Columns).rows))),
      );
      const probabilities = await this.scoreEncoded(features, rows);
      const perRecord: Record<string, unknown>[] = new Array(rows);
      // The value read from the float32 tensor is exact as a JS number; it is serialized as is.
      for (let r = 0; r < rows; r++) perRecord[r] = this.#decided({ [encoded.field]: probabilities[r] }, probabilities[r]!);
      return perRecord;
    }
    const outputs = this.signature.outputs;
    const fieldInput = this.#fieldInput;
    // A booster's records name its features; its protocol calls send its one input as the graph has it.
    const feeds = fieldInput
      ? {
          [fieldInput.input]: new Tensor(
            'float32',
            concatFeatures(
              parts.map((p) =>
                Array.isArray(p)
                  ? fieldInput.encoder.encode(p)
                  : (columnValues('float32', (p as Columns).inputs.get(fieldInput.input)!) as Float32Array),
              ),
            ),
            [rows, fieldInput.encoder.width],
          ),
        }
      : encodeParts(this.signature.inputs, parts);
    const results = await this.session.run(
      feeds,
      outputs.map((o) => o.name),
    );
    const perRecord = decodeOutputs(outputs, results, rows);
    for (const record of perRecord) this.#present(record);
    return perRecord;
  }

  /** A record-encoded version's probability per record, in input order (float32, as the graph gives them). */
  probabilities(records: readonly EncodedRecord[]): Promise<Float32Array> {
    const encoded = this.#encoded;
    if (!encoded) return Promise.reject(new Error(`model ${this.name} version ${this.version} has no record encoding`));
    return this.scoreEncoded(encoded.encoder.encode(records), records.length);
  }

  /**
   * A record-encoded version's probability per row of already encoded features (row-major
   * [rows, width], as its encoder writes them). Throws a RangeError on a size mismatch.
   */
  async scoreEncoded(features: Float32Array, rows: number): Promise<Float32Array> {
    const encoded = this.#encoded;
    if (!encoded) throw new Error(`model ${this.name} version ${this.version} has no record encoding`);
    if (this.#closing) throw new Error(`model ${this.name} version ${this.version} is closed`);
    const width = encoded.encoder.width;
    if (features.length !== rows * width) throw new RangeError(`features hold ${features.length} values, expected ${rows} rows × ${width}`);
    if (rows === 0) return new Float32Array(0);
    // Fetch only the probabilities; the label output is never copied back to JS.
    const results = await this.session.run({ [encoded.input]: new Tensor('float32', features, [rows, width]) }, [encoded.output]);
    const tensor = results[encoded.output];
    if (!(tensor instanceof Tensor) || !(tensor.data instanceof Float32Array)) {
      throw new Error(`model ${this.name} version ${this.version}: output ${encoded.output} is not a float32 tensor`);
    }
    const classes = tensor.dims[1] ?? 1;
    const data = tensor.data;
    const out = new Float32Array(rows);
    for (let r = 0; r < rows; r++) out[r] = data[r * classes + encoded.column]!;
    return out;
  }

  /** The decision label of one probability, by this version's policy (manifest, config merged). */
  decide(probability: number): string {
    if (!this.decision) throw new Error(`model ${this.name} version ${this.version} has no decision policy`);
    return applyDecision(this.decision, probability);
  }

  #decided(record: Record<string, unknown>, probability: number): Record<string, unknown> {
    if (this.decision) record[DECISION_FIELD] = applyDecision(this.decision, probability);
    return record;
  }

  // The decision reads the raw probability, so it runs before labels turn columns into names.
  #present(record: Record<string, unknown>): void {
    if (this.decision) {
      const value = record[this.decision.output];
      const p = Array.isArray(value) ? value[this.decision.column] : value;
      record[DECISION_FIELD] = applyDecision(this.decision, p as number);
    }
    for (const [output, labels] of Object.entries(this.classLabels)) {
      const value = record[output];
      if (typeof value === 'number') record[output] = labels[value] ?? value;
      else if (Array.isArray(value)) record[output] = Object.fromEntries(labels.map((label, i) => [label, value[i]]));
    }
  }
}

export async function readModelFile(file: string): Promise<Buffer> {
  try {
    return await readFile(file);
  } catch (error) {
    const code = (error as NodeJS.ErrnoException).code;
    throw new ModelLoadError(file, code === 'ENOENT' ? 'missing' : `cannot be read (${code ?? String(error)})`, { cause: error });
  }
}

async function readManifest(file: string): Promise<Manifest | undefined> {
  let text: string;
  try {
    text = await readFile(file, 'utf8');
  } catch (error) {
    if ((error as NodeJS.ErrnoException).code === 'ENOENT') return undefined;
    throw new ModelLoadError(file, `cannot be read (${(error as NodeJS.ErrnoException).code ?? String(error)})`, { cause: error });
  }
  let json: unknown;
  try {
    json = JSON.parse(text);
  } catch (error) {
    throw new ModelLoadError(file, `is not valid JSON (${(error as Error).message})`, { cause: error });
  }
  const parsed = ManifestSchema.safeParse(json);
  if (!parsed.success) throw new ModelLoadError(file, `is not a valid manifest: ${z.prettifyError(parsed.error)}`, { cause: parsed.error });
  return parsed.data;
}

/** Throws ModelLoadError when `bytes` are not the ones the manifest's size and sha256 describe. */
export function verifyIntegrity(modelFile: string, bytes: Buffer, manifest: { bytes: number; sha256: string }): void {
  if (bytes.length < manifest.bytes) {
    throw new ModelLoadError(modelFile, `truncated: ${bytes.length} bytes, manifest says ${manifest.bytes}`);
  }
  const sha256 = createHash('sha256').update(bytes).digest('hex');
  if (sha256 !== manifest.sha256 || bytes.length !== manifest.bytes) {
    throw new ModelLoadError(
      modelFile,
      `sha256 mismatch: file has ${sha256} (${bytes.length} bytes), manifest says ${manifest.sha256} ` +
        `(${manifest.bytes} bytes); the file is corrupt or belongs to another manifest`,
    );
  }
}

/** One onnxruntime session over `bytes`, or a ModelLoadError naming the file. */
async function openSession(modelFile: string, bytes: Uint8Array, options: LoadModelOptions): Promise<InferenceSession> {
  try {
    return await InferenceSession.create(bytes, {
      intraOpNumThreads: options.intraOpNumThreads ?? 1,
      interOpNumThreads: 1,
      executionMode: 'sequential',
      graphOptimizationLevel: 'all',
    });
  } catch (error) {
    throw new ModelLoadError(modelFile, `is not a loadable ONNX model (${(error as Error).message})`, { cause: error });
  }
}

/** A record encoding's promises about the graph: one float32 input of its width, the probability output's column. */
function encodingProblems(session: InferenceSession, input: RecordEncoding, output: { name: string; probability_column: number }): string[] {
  const problems: string[] = [];
  const graphInput = session.inputMetadata.find((m) => m.name === input.name);
  if (session.inputNames.length !== 1 || !graphInput) {
    problems.push(`inputs are [${session.inputNames.join(', ')}], manifest expects [${input.name}]`);
  } else if (!graphInput.isTensor || graphInput.type !== 'float32') {
    problems.push(`input ${input.name} is not a float32 tensor`);
  } else if (graphInput.shape.length !== 2 || graphInput.shape[1] !== input.width) {
    problems.push(`input ${input.name} has shape [${graphInput.shape.join(', ')}], manifest encodes ${input.width} features per row`);
  }
  const graphOutput = session.outputMetadata.find((m) => m.name === output.name);
  if (!graphOutput) {
    problems.push(`outputs are [${session.outputNames.join(', ')}], manifest expects ${output.name}`);
  } else if (!graphOutput.isTensor || graphOutput.type !== 'float32') {
    // A ZipMap (sequence of maps) output would be slow to copy and is not what scoreEncoded reads.
    problems.push(`output ${output.name} is not a float32 tensor`);
  } else {
    // [N, classes], or [N] (a binary booster's probability, which scoreEncoded reads as one column).
    const classes = graphOutput.shape.length === 1 ? 1 : graphOutput.shape[1];
    if (graphOutput.shape.length > 2 || typeof classes !== 'number' || classes <= output.probability_column) {
      problems.push(`output ${output.name} has shape [${graphOutput.shape.join(', ')}], manifest reads column ${output.probability_column}`);
    }
  }
  return problems;
}

/** What the manifest promises that the graph does not keep; the one signature check beside readSignature's. */
function manifestProblems(
  name: string,
  manifest: Manifest,
  policy: DecisionPolicy | undefined,
  signature: ModelSignature,
  session: InferenceSession,
): string[] {
  const problems: string[] = [];
  if (manifest.name !== undefined && manifest.name !== name) {
    problems.push(`manifest names model "${manifest.name}" but it sits in the directory of "${name}"`);
  }
  const output = (n: string) => signature.outputs.find((o) => o.name === n);
  if (policy) {
    const o = output(policy.output);
    const columns = o?.shape.length === 2 ? o.shape[1] : 1;
    if (!o || (o.type !== 'float32' && o.type !== 'float64')) {
      problems.push(`decision policy reads ${policy.output}, which is not a float output of the graph`);
    } else if (o.shape.length > 2 || typeof columns !== 'number' || policy.column >= columns) {
      problems.push(`decision policy reads column ${policy.column} of ${policy.output}, shape [${o.shape.join(', ')}]`);
    }
    if (output(DECISION_FIELD)) problems.push(`the graph has an output named ${DECISION_FIELD}, which the decision policy would hide`);
  }
  for (const [name, labels] of Object.entries(manifest.class_labels ?? {})) {
    const o = output(name);
    if (!o) problems.push(`class_labels name output ${name}, which the graph does not have`);
    else if (o.type === 'float32' || o.type === 'float64') {
      if (o.shape.length !== 2 || o.shape[1] !== labels.length) {
        problems.push(`class_labels give ${labels.length} labels for ${name}, shape [${o.shape.join(', ')}]`);
      }
    } else if (o.type !== 'int64' && o.type !== 'int32') {
      problems.push(`class_labels apply to integer or probability outputs, ${name} is ${o.type}`);
    }
  }
  if (manifest.input && manifest.output) problems.push(...encodingProblems(session, manifest.input, manifest.output));
  return problems;
}

/**
 * The version's one model file: model.onnx, or an XGBoost booster as saved (xgboost.json or
 * xgboost.ubj). With none, model.onnx is what is missing; with two, the version is ambiguous.
 */
async function modelFileIn(dir: string): Promise<string> {
  const present = (await Promise.all([MODEL_FILE, ...XGBOOST_FILES].map(async (f) => ((await exists(join(dir, f))) ? f : undefined)))).filter(
    (f) => f !== undefined,
  );
  if (present.length > 1) {
    throw new ModelLoadError(join(dir, present[0]!), `${present.join(' and ')} are both present: a version holds one model file`);
  }
  return join(dir, present[0] ?? MODEL_FILE);
}

async function exists(file: string): Promise<boolean> {
  return stat(file).then(
    () => true,
    () => false,
  );
}

/** A saved booster converted to a graph, or a ModelLoadError with the reason it is not served. */
function xgboostGraph(file: string, bytes: Buffer): ConvertedBooster {
  try {
    return convertBooster(readBooster(basename(file), bytes));
  } catch (error) {
    if (error instanceof XgboostRefusal) throw new ModelLoadError(file, `is not served: ${error.message}`, { cause: error });
    throw error;
  }
}

/**
 * What a version is made from, read and checked once: the graph's bytes (a booster already
 * converted), its manifest, and the options it opens with. Plain data, so another thread can open
 * the same version from it (bulk-runner.ts) without reading the files again.
 */
export type VersionSource = {
  dir: string;
  name: string;
  version: number;
  modelFile: string;
  graph: Uint8Array;
  manifest: Manifest | undefined;
  /** A booster's own record fields, when its manifest gives no record encoding. */
  boosterFields: RecordEncoding | undefined;
  options: LoadModelOptions;
};

/**
 * Reads `<dir>/model.onnx`, or converts `<dir>/xgboost.json|ubj`, checked against
 * `<dir>/manifest.json` when there is one (the file's size and sha256).
 * @throws ModelLoadError naming the file and the problem.
 */
export async function readVersionSource(dir: string, name: string, version: number, options: LoadModelOptions = {}): Promise<VersionSource> {
  const modelFile = await modelFileIn(dir);
  const manifest = await readManifest(join(dir, MANIFEST_FILE));
  const bytes = await readModelFile(modelFile);
  if (manifest?.sha256) verifyIntegrity(modelFile, bytes, { bytes: manifest.bytes ?? bytes.length, sha256: manifest.sha256 });
  const booster = modelFile.endsWith(MODEL_FILE) ? undefined : xgboostGraph(modelFile, bytes);
  // A booster's records are its feature_names unless the manifest encodes records its own way.
  const boosterFields = booster && !manifest?.input ? boosterRecordFields(booster) : undefined;
  return { dir, name, version, modelFile, graph: booster?.onnx ?? bytes, manifest, boosterFields, options };
}

/**
 * Opens a version from its source: the session, the signature read from the graph, and the
 * manifest's promises checked against it.
 * @throws ModelLoadError naming the file and the problem; nothing is left open when it throws.
 */
export async function openModelVersion(source: VersionSource): Promise<ModelVersion> {
  const { dir, name, modelFile, manifest, options } = source;
  let decision: DecisionPolicy | undefined;
  try {
    decision = manifest ? decisionPolicy(manifest, options.thresholds) : undefined;
  } catch (error) {
    throw new ModelLoadError(join(dir, MANIFEST_FILE), (error as Error).message, { cause: error });
  }
  const session = await openSession(modelFile, source.graph, options);
  const { signature, ignoredOutputs, problems } = readSignature(session);
  const mismatches = manifest ? manifestProblems(name, manifest, decision, signature, session) : [];
  if (mismatches.length > 0) problems.push(`does not match ${MANIFEST_FILE}: ${mismatches.join('; ')}`);
  if (problems.length > 0) {
    await session.release();
    throw new ModelLoadError(modelFile, problems.join('; '));
  }
  return new ModelVersion({ source, session, signature, ignoredOutputs, decision });
}

/** Reads and opens version `version` of model `name` from `dir` (readVersionSource, then openModelVersion). */
export async function loadModelVersion(dir: string, name: string, version: number, options: LoadModelOptions = {}): Promise<ModelVersion> {
  return openModelVersion(await readVersionSource(dir, name, version, options));
}

/** One number field per feature, in column order; null or absent is a missing value, as XGBoost's own NaN. */
function boosterRecordFields(booster: ConvertedBooster): RecordEncoding {
  return {
    name: XGBOOST_INPUT,
    dtype: 'float32',
    width: booster.features.length,
    features: booster.features.map((name) => ({ name, encoding: 'number', missing: 'nan' })),
  };
}
