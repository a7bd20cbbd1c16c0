// The worker's model: one onnxruntime session plus the manifest that says how to feed it. Loading
// verifies the file against the manifest before any record is scored, so a missing, corrupt or
// mismatched model stops the worker at start with a message naming the file and the problem.
import { createHash } from 'node:crypto';
import { readFile } from 'node:fs/promises';
import { join } from 'node:path';
import { InferenceSession, Tensor } from 'onnxruntime-node';
import { z } from 'zod';
import type { FraudRecord } from '../shared/schemas/record.ts';
import { createFeatureEncoder, type FeatureEncoder } from './features.ts';
import { ModelManifestSchema, type ModelManifest } from './model-manifest.ts';

export const MANIFEST_FILE = 'manifest.json';

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
}

/** What ScoringModel reads of a manifest: fraud's, or a repository manifest with a record encoding. */
export type ScoringManifest = Pick<ModelManifest, 'version' | 'input' | 'output' | 'thresholds'>;

export class ScoringModel {
  readonly manifest: ScoringManifest;
  /** The manifest's version, returned to clients as `model_version`. */
  readonly version: string;
  readonly featureWidth: number;
  readonly #session: InferenceSession;
  readonly #encoder: FeatureEncoder;
  #closing: Promise<void> | undefined;

  constructor(manifest: ScoringManifest, session: InferenceSession) {
    this.manifest = manifest;
    this.version = manifest.version;
    this.#session = session;
    this.#encoder = createFeatureEncoder(manifest.input);
    this.featureWidth = this.#encoder.width;
  }

  /** Fraud probability per record, in input order. */
  score(records: readonly FraudRecord[]): Promise<Float32Array> {
    return this.scoreFeatures(this.#encoder.encode(records), records.length);
  }

  /**
   * Fraud probability per row of already encoded features (row-major [rows, featureWidth], as
   * `createFeatureEncoder(manifest.input)` writes them). Throws a RangeError on a size mismatch.
   */
  async scoreFeatures(features: Float32Array, rows: number): Promise<Float32Array> {
    if (this.#closing) throw new Error(`model ${this.version} is closed`);
    if (features.length !== rows * this.featureWidth) {
      throw new RangeError(`features hold ${features.length} values, expected ${rows} rows × ${this.featureWidth}`);
    }
    if (rows === 0) return new Float32Array(0);
    const { input, output } = this.manifest;
    // Fetch only the probabilities; the label output is never copied back to JS.
    const results = await this.#session.run({ [input.name]: new Tensor('float32', features, [rows, this.featureWidth]) }, [output.name]);
    const probabilities = results[output.name];
    if (!(probabilities instanceof Tensor) || !(probabilities.data instanceof Float32Array)) {
      throw new Error(`model ${this.version}: output ${output.name} is not a float32 tensor`);
    }
    const classes = probabilities.dims[1] ?? 1;
    const data = probabilities.data;
    const out = new Float32Array(rows);
    for (let r = 0; r < rows; r++) out[r] = data[r * classes + output.probability_column]!;
    return out;
  }

  /** Releases the session. Idempotent: later calls return the first call's promise. */
  close(): Promise<void> {
    this.#closing ??= this.#session.release();
    return this.#closing;
  }
}

export async function readModelFile(file: string): Promise<Buffer> {
  try {
    return await readFile(file);
  } catch (error) {
    const code = (error as NodeJS.ErrnoException).code;
    throw new ModelLoadError(file, code === 'ENOENT' ? 'missing' : `cannot be read (${code ?? String(error)})`, {
      cause: error,
    });
  }
}

function readManifest(file: string, text: string): ModelManifest {
  let json: unknown;
  try {
    json = JSON.parse(text);
  } catch (error) {
    throw new ModelLoadError(file, `is not valid JSON (${(error as Error).message})`, { cause: error });
  }
  const parsed = ModelManifestSchema.safeParse(json);
  if (!parsed.success) {
    throw new ModelLoadError(file, `is not a valid model manifest:\n${z.prettifyError(parsed.error)}`);
  }
  return parsed.data;
}

/** Compares the session's graph signature with what the manifest promises; returns the problems. */
export function signatureProblems(session: InferenceSession, manifest: Pick<ModelManifest, 'input' | 'output'>, width: number): string[] {
  const problems: string[] = [];
  const { input, output } = manifest;
  const graphInput = session.inputMetadata.find((m) => m.name === input.name);
  if (session.inputNames.length !== 1 || !graphInput) {
    problems.push(`inputs are [${session.inputNames.join(', ')}], manifest expects [${input.name}]`);
  } else if (!graphInput.isTensor || graphInput.type !== 'float32') {
    problems.push(`input ${input.name} is not a float32 tensor`);
  } else if (graphInput.shape.length !== 2 || graphInput.shape[1] !== width) {
    problems.push(`input ${input.name} has shape [${graphInput.shape.join(', ')}], manifest encodes ${width} features per row`);
  }
  const graphOutput = session.outputMetadata.find((m) => m.name === output.name);
  if (!graphOutput) {
    problems.push(`outputs are [${session.outputNames.join(', ')}], manifest expects ${output.name}`);
  } else if (!graphOutput.isTensor || graphOutput.type !== 'float32') {
    // A ZipMap (sequence of maps) output would be slow to copy and is not what scoreFeatures reads.
    problems.push(`output ${output.name} is not a float32 tensor`);
  } else {
    const classes = graphOutput.shape[1];
    if (graphOutput.shape.length !== 2 || typeof classes !== 'number' || classes <= output.probability_column) {
      problems.push(`output ${output.name} has shape [${graphOutput.shape.join(', ')}], ` + `manifest reads column ${output.probability_column}`);
    }
  }
  return problems;
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
export async function openSession(modelFile: string, bytes: Uint8Array, options: LoadModelOptions = {}): Promise<InferenceSession> {
  try {
    return await InferenceSession.create(bytes, {
      intraOpNumThreads: options.intraOpNumThreads ?? 1,
      interOpNumThreads: 1,
      executionMode: 'sequential',
      graphOptimizationLevel: 'all',
    });
  } catch (error) {
    throw new ModelLoadError(modelFile, `is not a loadable ONNX model (${(error as Error).message})`, {
      cause: error,
    });
  }
}

/**
 * Loads `dir/manifest.json` and the ONNX file it names, verifies size, sha256 and the graph's
 * inputs/outputs against the manifest, and opens one session.
 * @throws ModelLoadError naming the file and the problem; nothing is left open when it throws.
 */
export async function loadModel(dir: string, options: LoadModelOptions = {}): Promise<ScoringModel> {
  const manifestFile = join(dir, MANIFEST_FILE);
  const manifest = readManifest(manifestFile, (await readModelFile(manifestFile)).toString('utf8'));
  const modelFile = join(dir, manifest.file);
  const bytes = await readModelFile(modelFile);

  verifyIntegrity(modelFile, bytes, manifest);
  const session = await openSession(modelFile, bytes, options);

  const width = manifest.input.width;
  const problems = signatureProblems(session, manifest, width);
  if (problems.length > 0) {
    await session.release();
    throw new ModelLoadError(modelFile, `does not match ${MANIFEST_FILE}: ${problems.join('; ')}`);
  }
  return new ScoringModel(manifest, session);
}
