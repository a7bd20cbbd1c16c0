// A test fixture for the protocol-layer tests only: an in-process InferenceBackend whose
// models compute a deterministic transform of their inputs, with switches for the faults a
// real backend raises. The end-to-end path through the queue is tested elsewhere.
import type { InferenceBackend, InferOptions, InferResult, ModelMetadata, TensorMetadata } from '../../src/api/oip/backend.ts';
import { DeadlineExceededError, UnknownModelError as ModelNotFoundError, NotServableError as UnavailableError } from '../../src/api/oip/errors.ts';
import { OverloadedError } from '../../src/shared/errors.ts';
import { DATATYPES, type Datatype, type NumericArray, type Tensor, type TensorMap } from '../../src/api/oip/tensors.ts';

/** The short input name of each datatype in the "mirror" model. */
export const MIRROR_INPUTS: Record<Datatype, string> = {
  BOOL: 'b',
  UINT8: 'u8',
  UINT16: 'u16',
  UINT32: 'u32',
  UINT64: 'u64',
  INT8: 'i8',
  INT16: 'i16',
  INT32: 'i32',
  INT64: 'i64',
  FP32: 'f32',
  FP64: 'f64',
  BYTES: 's',
};

const mirror: ModelMetadata = {
  name: 'mirror',
  versions: ['1'],
  platform: 'fixture_mirror',
  inputs: DATATYPES.map((datatype) => ({ name: MIRROR_INPUTS[datatype], datatype, shape: [-1, 2] })),
  outputs: DATATYPES.map((datatype) => ({ name: `${MIRROR_INPUTS[datatype]}_out`, datatype, shape: [-1, 2] })),
};

const scale: ModelMetadata = (() => {
  const x: TensorMetadata = { name: 'x', datatype: 'FP32', shape: [-1, 3], accepts: ['FP64'], finite: true };
  return {
    name: 'scale',
    versions: ['1', '2'],
    platform: 'fixture_scale',
    inputs: [x, { name: 'weight', datatype: 'FP32', shape: [-1, 1], accepts: ['FP64'] }],
    outputs: [
      { name: 'y', datatype: 'FP32', shape: [-1] },
      { name: 'label', datatype: 'BYTES', shape: [-1] },
      { name: 'version', datatype: 'INT64', shape: [-1] },
    ],
  };
})();

/** mirror: each output is its input transformed — integers +1 (wrapping), floats ×2, BOOL negated, BYTES upper-cased. */
export function mirrorOf(tensor: Tensor): Tensor {
  const { data } = tensor;
  let out: Tensor['data'];
  if (tensor.datatype === 'BOOL') out = (data as boolean[]).map((b) => !b);
  else if (tensor.datatype === 'BYTES') out = (data as string[]).map((s) => s.toUpperCase());
  else if (data instanceof BigInt64Array || data instanceof BigUint64Array) {
    out = data.map((v: bigint) => v + 1n) as NumericArray;
  } else if (data instanceof Float32Array || data instanceof Float64Array) out = data.map((v) => v * 2);
  else out = (data as Exclude<NumericArray, BigInt64Array | BigUint64Array>).map((v) => v + 1);
  return { datatype: tensor.datatype, shape: tensor.shape, data: out };
}

/** scale: y = weight × (sum of the row of x) × version; label "high" when y > 1. */
export function scaleOf(x: ArrayLike<number>, weight: ArrayLike<number>, version: number) {
  const rows = weight.length;
  const y = new Float32Array(rows);
  for (let r = 0; r < rows; r++) y[r] = weight[r]! * (x[r * 3]! + x[r * 3 + 1]! + x[r * 3 + 2]!) * version;
  return { y, label: Array.from(y, (v) => (v > 1 ? 'high' : 'low')) };
}

export type Fault = 'overloaded' | 'unavailable' | 'hold' | undefined;

export class FixtureBackend implements InferenceBackend {
  ready = true;
  fault: Fault;
  /** Inference calls that reached the backend. */
  calls = 0;
  lastOptions: InferOptions | undefined;
  /** Calls held by the 'hold' fault, released by release(). */
  held = 0;
  private releases: (() => void)[] = [];
  private holdWaiters: ((options: InferOptions) => void)[] = [];

  serverMetadata() {
    return { name: 'fixture', version: '0.0.0', extensions: [] };
  }

  async isReady() {
    return this.ready;
  }

  async modelMetadata(name: string, version?: string): Promise<ModelMetadata> {
    if (name === 'mirror' && (version === undefined || version === '1')) return mirror;
    if (name === 'scale' && (version === undefined || version === '1' || version === '2')) return scale;
    if (name === 'mirror' || name === 'scale') throw new ModelNotFoundError(name, version);
    throw new ModelNotFoundError(name);
  }

  async modelReady(name: string, version?: string) {
    await this.modelMetadata(name, version);
    return this.ready;
  }

  /**
   * The options of the next call the 'hold' fault takes. A test that waits on `held` alone can
   * see an earlier test's call still held for a moment, and act before its own call arrives.
   */
  nextHeld(): Promise<InferOptions> {
    return new Promise((resolve) => this.holdWaiters.push(resolve));
  }

  release() {
    for (const release of this.releases.splice(0)) release();
  }

  async infer(name: string, version: string | undefined, inputs: TensorMap, options: InferOptions): Promise<InferResult> {
    this.calls++;
    this.lastOptions = options;
    const started = performance.now();
    if (this.fault === 'overloaded') throw new OverloadedError(1);
    if (this.fault === 'unavailable') throw new UnavailableError('No worker holds the model');
    if (this.fault === 'hold') await this.hold(options);
    await this.modelMetadata(name, version);
    const outputs: TensorMap = new Map();
    if (name === 'mirror') {
      for (const [input, tensor] of inputs) outputs.set(`${input}_out`, mirrorOf(tensor));
    } else {
      const v = Number(version ?? '2');
      const x = inputs.get('x')!.data as Float32Array | Float64Array;
      const weight = inputs.get('weight')!.data as Float32Array | Float64Array;
      const { y, label } = scaleOf(x, weight, v);
      outputs.set('y', { datatype: 'FP32', shape: [y.length], data: y });
      outputs.set('label', { datatype: 'BYTES', shape: [y.length], data: label });
      outputs.set('version', {
        datatype: 'INT64',
        shape: [y.length],
        data: new BigInt64Array(y.length).fill(BigInt(v)),
      });
    }
    if (options.outputs) for (const key of outputs.keys()) if (!options.outputs.includes(key)) outputs.delete(key);
    const batch = inputs.values().next().value?.shape[0] ?? 0;
    return {
      modelName: name,
      modelVersion: name === 'mirror' ? '1' : (version ?? '2'),
      outputs,
      timings: { queueMs: 0, batchWaitMs: 0, inferenceMs: performance.now() - started, batchRecords: batch },
    };
  }

  /** Waits for release(), or fails at the deadline as a real backend does, or when the caller leaves. */
  private hold(options: InferOptions): Promise<void> {
    this.held++;
    for (const waiter of this.holdWaiters.splice(0)) waiter(options);
    return new Promise<void>((resolve, reject) => {
      const timer = setTimeout(() => reject(new DeadlineExceededError()), Math.max(0, options.deadlineMs - Date.now()));
      options.signal?.addEventListener('abort', () => {
        clearTimeout(timer);
        reject(options.signal!.reason);
      });
      this.releases.push(() => {
        clearTimeout(timer);
        resolve();
      });
    }).finally(() => this.held--);
  }
}
