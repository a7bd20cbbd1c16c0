// One version of one repository model: its session, the signature read from the graph, what its
// optional manifest adds, and a lease count so the session is closed only after the work that
// holds it is done.
import { readFile } from 'node:fs/promises';
import { join } from 'node:path';
import type { InferenceSession } from 'onnxruntime-node';
import { z } from 'zod';
import type { ModelSignature, SignatureRecord } from '../shared/model-signature.ts';
import { ModelLoadError, ScoringModel, openSession, readModelFile, signatureProblems, verifyIntegrity, type LoadModelOptions } from './model.ts';
import { readSignature, type IgnoredOutput } from './model-signature.ts';
import { decodeOutputs, encodeRecords } from './tensor-codec.ts';
import { MODEL_FILE, VersionManifestSchema, applyDecision, decisionPolicy, type DecisionPolicy, type VersionManifest } from './version-manifest.ts';

export const MANIFEST_FILE = 'manifest.json';
/** The per-record field a decision policy adds to the outputs. */
export const DECISION_FIELD = 'decision';

export class ModelVersion {
  readonly name: string;
  readonly version: number;
  /** What replies name as `model_version`: the manifest's version, else the version number. */
  readonly displayVersion: string;
  readonly dir: string;
  readonly signature: ModelSignature;
  readonly ignoredOutputs: readonly IgnoredOutput[];
  readonly manifest: VersionManifest | undefined;
  readonly decision: DecisionPolicy | undefined;
  readonly classLabels: Readonly<Record<string, readonly string[]>>;
  /**
   * The fraud path (records encoded by the manifest's features), when the manifest gives a record
   * encoding. It shares this version's session: hold a lease while scoring, never close() it.
   */
  readonly scoring: ScoringModel | undefined;
  readonly session: InferenceSession;
  #leases = 0;
  #retired = false;
  #closing: Promise<void> | undefined;
  readonly #closed = Promise.withResolvers<void>();

  constructor(init: {
    name: string;
    version: number;
    dir: string;
    session: InferenceSession;
    signature: ModelSignature;
    ignoredOutputs: IgnoredOutput[];
    manifest: VersionManifest | undefined;
  }) {
    this.name = init.name;
    this.version = init.version;
    this.dir = init.dir;
    this.session = init.session;
    this.signature = init.signature;
    this.ignoredOutputs = init.ignoredOutputs;
    this.manifest = init.manifest;
    this.displayVersion = init.manifest?.version ?? String(init.version);
    this.decision = init.manifest ? decisionPolicy(init.manifest) : undefined;
    this.classLabels = init.manifest?.class_labels ?? {};
    const m = init.manifest;
    this.scoring =
      m?.input && m.output && m.thresholds
        ? new ScoringModel({ version: this.displayVersion, input: m.input, output: m.output, thresholds: m.thresholds }, init.session)
        : undefined;
  }

  /** Leases held now. */
  get leases(): number {
    return this.#leases;
  }

  get retired(): boolean {
    return this.#retired;
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
   * Scores `records` (valid for recordSchemaFromSignature(this.signature)) in one session.run:
   * per record, every readable output by name, class labels applied, plus `decision` when the
   * manifest gives a policy. Call it while holding a lease.
   */
  async run(records: readonly SignatureRecord[]): Promise<Record<string, unknown>[]> {
    if (this.#closing) throw new Error(`model ${this.name} version ${this.version} is closed`);
    if (records.length === 0) return [];
    const outputs = this.signature.outputs;
    const results = await this.session.run(
      encodeRecords(this.signature.inputs, records),
      outputs.map((o) => o.name),
    );
    const perRecord = decodeOutputs(outputs, results, records.length);
    for (const record of perRecord) this.#present(record);
    return perRecord;
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

async function readVersionManifest(file: string): Promise<VersionManifest | undefined> {
  let text: string;
  try {
    text = await readFile(file, 'utf8');
  } catch (error) {
    if ((error as NodeJS.ErrnoException).code === 'ENOENT') return undefined;
    throw new ModelLoadError(file, `cannot be read (${(error as NodeJS.ErrnoException).code ?? String(error)})`);
  }
  let json: unknown;
  try {
    json = JSON.parse(text);
  } catch (error) {
    throw new ModelLoadError(file, `is not valid JSON (${(error as Error).message})`);
  }
  const parsed = VersionManifestSchema.safeParse(json);
  if (!parsed.success) throw new ModelLoadError(file, `is not a valid manifest: ${z.prettifyError(parsed.error)}`);
  return parsed.data;
}

/** What the manifest promises about outputs that the graph does not keep. */
function manifestProblems(name: string, manifest: VersionManifest, signature: ModelSignature, session: InferenceSession): string[] {
  const problems: string[] = [];
  if (manifest.name !== undefined && manifest.name !== name) {
    problems.push(`manifest names model "${manifest.name}" but it sits in the directory of "${name}"`);
  }
  const output = (n: string) => signature.outputs.find((o) => o.name === n);
  const policy = decisionPolicy(manifest);
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
  if (manifest.input && manifest.output) {
    problems.push(...signatureProblems(session, { input: manifest.input, output: manifest.output }, manifest.input.width));
  }
  return problems;
}

/**
 * Opens `<dir>/model.onnx` (checked against `<dir>/manifest.json` when there is one) as version
 * `version` of model `name`.
 * @throws ModelLoadError naming the file and the problem; nothing is left open when it throws.
 */
export async function loadModelVersion(dir: string, name: string, version: number, options: LoadModelOptions = {}): Promise<ModelVersion> {
  const manifestFile = join(dir, MANIFEST_FILE);
  const modelFile = join(dir, MODEL_FILE);
  const manifest = await readVersionManifest(manifestFile);
  const bytes = await readModelFile(modelFile);
  if (manifest?.sha256) verifyIntegrity(modelFile, bytes, { bytes: manifest.bytes ?? bytes.length, sha256: manifest.sha256 });
  const session = await openSession(modelFile, bytes, options);

  const { signature, ignoredOutputs, problems } = readSignature(session);
  if (manifest) problems.push(...manifestProblems(name, manifest, signature, session));
  if (problems.length > 0) {
    await session.release();
    throw new ModelLoadError(modelFile, problems.join('; '));
  }
  return new ModelVersion({ name, version, dir, session, signature, ignoredOutputs, manifest });
}
