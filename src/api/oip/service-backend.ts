// The service behind the Open Inference Protocol: the model registry answers metadata and which
// version a call goes to (the one resolution rule of every route), the online dispatcher scores
// it. Tensors [N, …] become the N records the dispatcher takes, and its per-record outputs become
// tensors again, so a protocol call joins /predict's calls in the same queue job.
import { readFileSync } from 'node:fs';
import { ModelNotFoundError as AppModelNotFoundError, ModelUnavailableError } from '../../shared/errors.ts';
import { OIP_DATATYPE, type Dim, type TensorSignature } from '../../shared/model-signature.ts';
import { VERSION_PATTERN } from '../../shared/model-selector.ts';
import { isRedisReady, type RedisClient } from '../../shared/redis.ts';
import { FraudRecordSchema } from '../../shared/schemas/record.ts';
import type { ModelRegistry, Resolved, VersionView } from '../model-registry.ts';
import { outputsOf, type OnlineDispatcher } from '../online-dispatcher.ts';
import type { InferenceBackend, InferOptions, InferResult, ModelMetadata, ServerMetadata, TensorMetadata } from './backend.ts';
import { DeadlineExceededError, InvalidArgumentError, ModelNotFoundError, UnavailableError } from './errors.ts';
import { checkInputs, type Datatype, type NumericArray, type Tensor, type TensorMap } from './tensors.ts';

const PACKAGE_VERSION = (JSON.parse(readFileSync(new URL('../../../package.json', import.meta.url), 'utf8')) as { version: string }).version;

const FRAUD_FIELDS = Object.keys(FraudRecordSchema.shape);

/** The fraud model's protocol face: the five fields of /predict's request, one tensor each. */
export const FRAUD_INPUTS: TensorMetadata[] = [
  { name: 'transaction_amount', datatype: 'FP32', shape: [-1], accepts: ['FP64'], finite: true },
  { name: 'merchant_category', datatype: 'BYTES', shape: [-1] },
  { name: 'card_present', datatype: 'BOOL', shape: [-1] },
  { name: 'hour_of_day', datatype: 'INT32', shape: [-1], accepts: ['INT64'] },
  { name: 'days_since_last_transaction', datatype: 'FP32', shape: [-1], accepts: ['FP64'], finite: true },
];
export const FRAUD_OUTPUTS: TensorMetadata[] = [
  { name: 'fraud_probability', datatype: 'FP32', shape: [-1] },
  { name: 'decision', datatype: 'BYTES', shape: [-1] },
];
const DECISION_OUTPUT = 'decision';

/** How one version speaks the protocol, built once per registry view of it. */
type Face = {
  view: VersionView;
  meta: ModelMetadata;
  /** Records carry fraud's fields (the dispatcher answers probabilities and decisions). */
  fraud: boolean;
  /** Per graph output, its signature, to rebuild tensors from per-record values. */
  outputs: TensorSignature[];
};

export type ServiceBackendOptions = {
  registry: ModelRegistry;
  dispatcher: OnlineDispatcher;
  redis: RedisClient;
  /** Largest batch dimension a call may carry (checked again here: the version may differ from the one validated). */
  maxBatch: number;
};

export class ServiceBackend implements InferenceBackend {
  readonly #options: ServiceBackendOptions;
  readonly #faces = new Map<string, Face>();

  constructor(options: ServiceBackendOptions) {
    this.#options = options;
  }

  serverMetadata(): ServerMetadata {
    return { name: 'scoring-api', version: PACKAGE_VERSION, extensions: [] };
  }

  async isReady(): Promise<boolean> {
    return isRedisReady(this.#options.redis) && Object.keys(this.#options.registry.held()).length > 0;
  }

  async modelMetadata(name: string, version?: string): Promise<ModelMetadata> {
    return this.#face(await this.#resolve(name, version)).meta;
  }

  async modelReady(name: string, version?: string): Promise<boolean> {
    try {
      await this.#resolve(name, version);
      return true;
    } catch (error) {
      if (error instanceof ModelUnavailableError) return false;
      throw error;
    }
  }

  async infer(name: string, version: string | undefined, inputs: TensorMap, options: InferOptions): Promise<InferResult> {
    const timeoutMs = Math.floor(options.deadlineMs - Date.now());
    if (timeoutMs <= 0) throw new DeadlineExceededError('The deadline passed before the call was queued');
    const resolved = await this.#resolve(name, version);
    const face = this.#face(resolved);
    // The version may have moved since the caller checked these tensors against its metadata.
    checkInputs(inputs, face.meta, { maxBatch: this.#options.maxBatch });
    const records = face.fraud ? fraudRecords(inputs) : signatureRecords(inputs, face.view.signature!.inputs);
    const result = await this.#options.dispatcher.submit(resolved.name, resolved.version, records, timeoutMs, options.signal);
    const perRecord = outputsOf(result);
    const outputs: TensorMap = new Map();
    const wanted = (n: string) => !options.outputs || options.outputs.includes(n);
    if (face.fraud) {
      if (wanted('fraud_probability')) {
        const p = Float32Array.from(perRecord, (r) => r.fraud_probability as number);
        outputs.set('fraud_probability', { datatype: 'FP32', shape: [p.length], data: p });
      }
      if (wanted(DECISION_OUTPUT)) {
        const d = perRecord.map((r) => String(r[DECISION_OUTPUT]));
        outputs.set(DECISION_OUTPUT, { datatype: 'BYTES', shape: [d.length], data: d });
      }
    } else {
      for (const output of face.outputs) {
        if (wanted(output.name)) outputs.set(output.name, outputTensor(output, perRecord, face.view.class_labels?.[output.name]));
      }
      if (face.view.decision && wanted(DECISION_OUTPUT)) {
        const d = perRecord.map((r) => String(r[DECISION_OUTPUT]));
        outputs.set(DECISION_OUTPUT, { datatype: 'BYTES', shape: [d.length], data: d });
      }
    }
    const t = result.timings;
    return {
      modelName: result.modelName,
      modelVersion: result.modelVersion,
      outputs,
      timings: { queueMs: t.queue_ms, batchWaitMs: t.batch_wait_ms, inferenceMs: t.inference_ms, batchRecords: t.batch_records },
    };
  }

  /** The registry's rule; its not-found becomes the protocol's, so both transports say 404 / NOT_FOUND. */
  async #resolve(name: string, version: string | undefined): Promise<Resolved> {
    if (version !== undefined && !VERSION_PATTERN.test(version)) throw new ModelNotFoundError(name, version);
    try {
      return await this.#options.registry.resolveFresh(name, version === undefined ? {} : { version: Number(version) });
    } catch (error) {
      if (error instanceof AppModelNotFoundError) throw new ModelNotFoundError(name, version);
      throw error;
    }
  }

  #face(resolved: Resolved): Face {
    const key = `${resolved.name}/${resolved.version}`;
    const cached = this.#faces.get(key);
    // The registry makes new views on each refresh (once a second): rebuilt at most that often.
    if (cached?.view === resolved.view) return cached;
    const face = buildFace(this.#options.registry, resolved);
    this.#faces.set(key, face);
    return face;
  }
}

function batchDim(d: Dim): number {
  return typeof d === 'number' ? d : -1;
}

function buildFace(registry: ModelRegistry, resolved: Resolved): Face {
  const { view } = resolved;
  const versions = registry
    .get(resolved.name)!
    .versions.filter((v) => v.state === 'loaded')
    .map((v) => String(v.version));
  const base = { name: resolved.name, versions, platform: 'onnx_onnxv1' };
  if (view.record_fields) {
    const fields = [...view.record_fields].sort().join(',');
    if (fields !== [...FRAUD_FIELDS].sort().join(',')) {
      throw new UnavailableError(`Model ${resolved.name} takes records of its manifest's fields, which the protocol does not map to tensors`);
    }
    return { view, fraud: true, outputs: [], meta: { ...base, inputs: FRAUD_INPUTS, outputs: FRAUD_OUTPUTS } };
  }
  const signature = view.signature;
  if (!signature) throw new UnavailableError(`Model ${resolved.name} version ${resolved.version} has no signature yet`);
  const inputs = signature.inputs.map((i): TensorMetadata => ({
    name: i.name,
    datatype: OIP_DATATYPE[i.type] as Datatype,
    shape: i.shape.map(batchDim),
    // Records travel as JSON, which has no NaN or Infinity.
    ...((i.type === 'float32' || i.type === 'float64') && { finite: true }),
  }));
  const outputs = signature.outputs.map((o): TensorMetadata => ({
    name: o.name,
    datatype: OIP_DATATYPE[o.type] as Datatype,
    shape: o.shape.map(batchDim),
  }));
  if (view.decision) outputs.push({ name: DECISION_OUTPUT, datatype: 'BYTES', shape: [-1] });
  return { view, fraud: false, outputs: signature.outputs, meta: { ...base, inputs, outputs } };
}

function rows(inputs: TensorMap): number {
  return inputs.values().next().value!.shape[0] ?? 1;
}

/** The N records of fraud's five tensors, checked by /predict's own schema (the message names the input). */
function fraudRecords(inputs: TensorMap): Record<string, unknown>[] {
  const n = rows(inputs);
  const column = (name: string) => inputs.get(name)!.data;
  const amount = column('transaction_amount') as Float32Array | Float64Array;
  const merchant = column('merchant_category') as string[];
  const present = column('card_present') as boolean[];
  const hour = column('hour_of_day') as Int32Array | BigInt64Array;
  const days = column('days_since_last_transaction') as Float32Array | Float64Array;
  const records: Record<string, unknown>[] = new Array(n);
  for (let i = 0; i < n; i++) {
    const record = {
      transaction_amount: amount[i],
      merchant_category: merchant[i],
      card_present: present[i],
      hour_of_day: Number(hour[i]),
      days_since_last_transaction: days[i],
    };
    const parsed = FraudRecordSchema.safeParse(record);
    if (!parsed.success) {
      const issue = parsed.error.issues[0]!;
      throw new InvalidArgumentError(`input "${String(issue.path[0])}": element ${i}: ${issue.message}`);
    }
    records[i] = record;
  }
  return records;
}

/** Per record, one value per graph input: a scalar for [N] and [N,1], the row of k values for [N,k]. */
function signatureRecords(inputs: TensorMap, signature: readonly TensorSignature[]): Record<string, unknown>[] {
  const n = rows(inputs);
  const records: Record<string, unknown>[] = Array.from({ length: n }, () => ({}));
  for (const input of signature) {
    const tensor = inputs.get(input.name)!;
    const width = n === 0 ? 0 : elementsOf(tensor) / n;
    const value = elementReader(input.name, tensor);
    const scalar = input.shape.length === 1 || input.shape[1] === 1;
    for (let r = 0; r < n; r++) {
      records[r]![input.name] = scalar ? value(r) : Array.from({ length: width }, (_, c) => value(r * width + c));
    }
  }
  return records;
}

function elementsOf(tensor: Tensor): number {
  return tensor.data.length;
}

/** Element i as JSON can carry it; a 64-bit integer past 2^53 is refused rather than rounded. */
function elementReader(name: string, tensor: Tensor): (i: number) => unknown {
  const { data } = tensor;
  if (data instanceof BigInt64Array || data instanceof BigUint64Array) {
    return (i) => {
      const v = data[i]!;
      if (v > BigInt(Number.MAX_SAFE_INTEGER) || v < BigInt(Number.MIN_SAFE_INTEGER)) {
        throw new InvalidArgumentError(`input "${name}": element ${i} (${v}) is beyond ±2^53, which the service cannot carry`);
      }
      return Number(v);
    };
  }
  return (i) => (data as ArrayLike<unknown>)[i];
}

const TYPED: Record<string, (n: number) => NumericArray> = {
  float32: (n) => new Float32Array(n),
  float64: (n) => new Float64Array(n),
  int32: (n) => new Int32Array(n),
  int64: (n) => new BigInt64Array(n),
};

/**
 * One graph output from per-record values: the shape is the graph's own ([N,1] stays [N,1]).
 * Class labels the worker applied are undone, so the tensor holds what the graph gave.
 */
function outputTensor(output: TensorSignature, perRecord: readonly Record<string, unknown>[], labels: string[] | undefined): Tensor {
  const n = perRecord.length;
  const flat: unknown[] = [];
  let inner: number[] = [];
  for (let r = 0; r < n; r++) {
    let value = perRecord[r]![output.name];
    if (labels && typeof value === 'string' && labels.includes(value)) value = labels.indexOf(value);
    else if (labels && value !== null && typeof value === 'object' && !Array.isArray(value)) {
      value = labels.map((label) => (value as Record<string, unknown>)[label]);
    }
    const before = flat.length;
    const dims = flatten(value, flat);
    if (r === 0) inner = dims;
    else if (flat.length - before !== inner.reduce((a, b) => a * b, 1)) throw new Error(`output ${output.name} is ragged`);
  }
  const shape = inner.length === 0 && output.shape.length === 2 && output.shape[1] === 1 ? [n, 1] : [n, ...inner];
  const datatype = OIP_DATATYPE[output.type] as Datatype;
  if (output.type === 'string') return { datatype, shape, data: flat.map(String) };
  if (output.type === 'bool') return { datatype, shape, data: flat.map(Boolean) };
  const data = TYPED[output.type]!(flat.length);
  if (data instanceof BigInt64Array) flat.forEach((v, i) => (data[i] = BigInt(v as number | string)));
  else flat.forEach((v, i) => ((data as Float32Array)[i] = v as number));
  return { datatype, shape, data };
}

/** Pushes the leaves of nested arrays in row-major order; returns the nesting's dimensions. */
function flatten(value: unknown, into: unknown[]): number[] {
  if (!Array.isArray(value)) {
    into.push(value);
    return [];
  }
  let dims: number[] = [];
  value.forEach((v, i) => {
    const d = flatten(v, into);
    if (i === 0) dims = d;
  });
  return [value.length, ...dims];
}
