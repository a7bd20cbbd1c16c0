// Tensors of the Open Inference Protocol: the datatypes, their three wire forms (REST JSON,
// gRPC typed contents, gRPC raw little-endian bytes) and the checks against a model's
// metadata. Every error is an InvalidArgumentError naming the input, raised before anything
// reaches the queue.
import { endianness } from 'node:os';
import type { ModelMetadata } from './backend.ts';
import { InvalidArgumentError } from './errors.ts';
import { DATATYPES, TYPED_LAYOUT, type Datatype, type NumericArray } from '../../shared/tensor-columns.ts';

export { DATATYPES, type Datatype, type NumericArray };
type NumericDatatype = Exclude<Datatype, 'BOOL' | 'BYTES'>;

/** BOOL → boolean[], BYTES → string[] (UTF-8), every other datatype → its typed array. */
export type TensorData = boolean[] | string[] | NumericArray;

export type Tensor = { datatype: Datatype; shape: number[]; data: TensorData };
export type TensorMap = Map<string, Tensor>;

type NumericSpec = {
  create: (length: number) => NumericArray;
  view: (buffer: ArrayBuffer) => NumericArray;
  bytes: number;
  /** Integer range; absent for floating point. */
  range?: readonly [bigint, bigint];
  /** The InferTensorContents field of this datatype. */
  field: ContentsField;
};

/** A datatype's spec from its layout (tensor-columns.ts): integers get their range, floats none. */
function numericSpec(datatype: NumericDatatype, field: ContentsField, signed?: boolean): NumericSpec {
  const { bytes, view } = TYPED_LAYOUT[datatype];
  const spec: NumericSpec = { create: (n) => view(new ArrayBuffer(n * bytes)), view, bytes, field };
  if (signed === undefined) return spec;
  const bits = BigInt(bytes * 8);
  spec.range = signed ? ([-(1n << (bits - 1n)), (1n << (bits - 1n)) - 1n] as const) : ([0n, (1n << bits) - 1n] as const);
  return spec;
}

const NUMERIC: Record<NumericDatatype, NumericSpec> = {
  UINT8: numericSpec('UINT8', 'uint_contents', false),
  UINT16: numericSpec('UINT16', 'uint_contents', false),
  UINT32: numericSpec('UINT32', 'uint_contents', false),
  UINT64: numericSpec('UINT64', 'uint64_contents', false),
  INT8: numericSpec('INT8', 'int_contents', true),
  INT16: numericSpec('INT16', 'int_contents', true),
  INT32: numericSpec('INT32', 'int_contents', true),
  INT64: numericSpec('INT64', 'int64_contents', true),
  FP32: numericSpec('FP32', 'fp32_contents'),
  FP64: numericSpec('FP64', 'fp64_contents'),
};

export const CONTENTS_FIELDS = [
  'bool_contents',
  'int_contents',
  'int64_contents',
  'uint_contents',
  'uint64_contents',
  'fp32_contents',
  'fp64_contents',
  'bytes_contents',
] as const;
type ContentsField = (typeof CONTENTS_FIELDS)[number];

/**
 * InferTensorContents as the server reads it (infer-codec.ts): 64-bit integers as numbers, or
 * as decimal strings past 2^53; bytes as Buffers; an absent repeated field is empty or missing.
 * Output contents are written by protobufjs, which takes any array-like for a numeric field.
 */
export type GrpcTensorContents = {
  bool_contents?: ArrayLike<boolean>;
  int_contents?: ArrayLike<number>;
  int64_contents?: ArrayLike<string | number>;
  uint_contents?: ArrayLike<number>;
  uint64_contents?: ArrayLike<string | number>;
  fp32_contents?: ArrayLike<number>;
  fp64_contents?: ArrayLike<number>;
  bytes_contents?: ArrayLike<Uint8Array>;
};

function fieldOf(datatype: Datatype): ContentsField {
  if (datatype === 'BOOL') return 'bool_contents';
  if (datatype === 'BYTES') return 'bytes_contents';
  return NUMERIC[datatype].field;
}

const LITTLE_ENDIAN_HOST = endianness() === 'LE';
const utf8 = new TextDecoder('utf-8', { fatal: true });

// ── Datatype and shape ─────────────────────────────────────────────────────

/** A datatype string of the protocol; FP16 and BF16 are refused with a clear message. */
export function parseDatatype(input: string, value: unknown): Datatype {
  if (value === 'FP16' || value === 'BF16') {
    throw new InvalidArgumentError(`input "${input}": datatype ${value} is not supported; send FP32 or FP64`);
  }
  if (typeof value !== 'string' || !(DATATYPES as readonly string[]).includes(value)) {
    throw new InvalidArgumentError(`input "${input}": unknown datatype ${JSON.stringify(value)}; use one of ${DATATYPES.join(', ')}`);
  }
  return value as Datatype;
}

/** A shape of non-negative integers; gRPC's int64 dimensions arrive as strings. */
export function parseShape(input: string, value: unknown): number[] {
  if (!Array.isArray(value)) throw new InvalidArgumentError(`input "${input}": shape must be an array of integers`);
  return value.map((d) => {
    const n = typeof d === 'string' && /^\d+$/.test(d) ? Number(d) : d;
    if (typeof n !== 'number' || !Number.isSafeInteger(n) || n < 0) {
      throw new InvalidArgumentError(`input "${input}": shape ${JSON.stringify(value)} must hold non-negative integers`);
    }
    return n;
  });
}

export function elementCount(shape: readonly number[]): number {
  let n = 1;
  for (const d of shape) n *= d;
  return n;
}

function countMismatch(input: string, shape: readonly number[], got: number): InvalidArgumentError {
  return new InvalidArgumentError(`input "${input}": shape [${shape.join(',')}] holds ${elementCount(shape)} elements but the data has ${got}`);
}

// ── Elements ───────────────────────────────────────────────────────────────

function fillNumeric(input: string, datatype: NumericDatatype, values: ArrayLike<unknown>): NumericArray {
  const spec = NUMERIC[datatype];
  const out = spec.create(values.length);
  const big = out instanceof BigInt64Array || out instanceof BigUint64Array;
  for (let i = 0; i < values.length; i++) {
    const v = values[i];
    if (!spec.range) {
      if (typeof v !== 'number') throw new InvalidArgumentError(`input "${input}": element ${i} is not a number`);
      out[i] = v;
      continue;
    }
    let asBig: bigint;
    if (typeof v === 'number' && Number.isInteger(v)) asBig = BigInt(v);
    else if (typeof v === 'string' && /^-?\d+$/.test(v)) asBig = BigInt(v);
    else throw new InvalidArgumentError(`input "${input}": element ${i} is not an integer`);
    if (asBig < spec.range[0] || asBig > spec.range[1]) {
      throw new InvalidArgumentError(`input "${input}": element ${i} (${asBig}) is out of range for ${datatype}`);
    }
    (out as { [i: number]: number | bigint })[i] = big ? asBig : Number(asBig);
  }
  return out;
}

function fillBool(input: string, values: ArrayLike<unknown>): boolean[] {
  const out = new Array<boolean>(values.length);
  for (let i = 0; i < values.length; i++) {
    const v = values[i];
    if (typeof v !== 'boolean') throw new InvalidArgumentError(`input "${input}": element ${i} is not a boolean`);
    out[i] = v;
  }
  return out;
}

function fillStrings(input: string, values: ArrayLike<unknown>): string[] {
  const out = new Array<string>(values.length);
  for (let i = 0; i < values.length; i++) {
    const v = values[i];
    if (typeof v !== 'string') throw new InvalidArgumentError(`input "${input}": element ${i} is not a string`);
    // A JSON string can still hold a lone surrogate, which has no UTF-8 form.
    if (!v.isWellFormed()) throw new InvalidArgumentError(`input "${input}": element ${i} is not valid UTF-8`);
    out[i] = v;
  }
  return out;
}

function decodeUtf8(input: string, bytes: Uint8Array, index: number): string {
  try {
    return utf8.decode(bytes);
  } catch {
    throw new InvalidArgumentError(`input "${input}": element ${index} is not valid UTF-8`);
  }
}

function fromElements(input: string, datatype: Datatype, values: ArrayLike<unknown>): TensorData {
  if (datatype === 'BOOL') return fillBool(input, values);
  if (datatype === 'BYTES') return fillStrings(input, values);
  return fillNumeric(input, datatype, values);
}

// ── REST JSON ──────────────────────────────────────────────────────────────

/** `data` flat in row-major order, or nested exactly as the shape says. */
function flattenJsonData(input: string, data: unknown, shape: readonly number[]): ArrayLike<unknown> {
  if (!Array.isArray(data)) throw new InvalidArgumentError(`input "${input}": data must be an array`);
  const nested = data.length > 0 && Array.isArray(data[0]);
  if (!nested) {
    if (data.length !== elementCount(shape)) throw countMismatch(input, shape, data.length);
    return data;
  }
  const flat: unknown[] = [];
  const walk = (node: unknown, depth: number) => {
    if (depth === shape.length) {
      if (Array.isArray(node)) throw new InvalidArgumentError(`input "${input}": data nests deeper than shape [${shape.join(',')}]`);
      flat.push(node);
      return;
    }
    if (!Array.isArray(node) || node.length !== shape[depth]) {
      throw new InvalidArgumentError(`input "${input}": nested data does not match shape [${shape.join(',')}] at depth ${depth}`);
    }
    for (const child of node) walk(child, depth + 1);
  };
  walk(data, 0);
  return flat;
}

/** One REST input `{name, shape, datatype, data}` → a tensor. */
export function tensorFromJson(input: string, datatype: unknown, shape: unknown, data: unknown): Tensor {
  const type = parseDatatype(input, datatype);
  const dims = parseShape(input, shape);
  return { datatype: type, shape: dims, data: fromElements(input, type, flattenJsonData(input, data, dims)) };
}

/** Output data for JSON, flat in row-major order; 64-bit integers become numbers. */
export function jsonData(tensor: Tensor): (number | boolean | string)[] {
  const { data } = tensor;
  if (Array.isArray(data)) return data;
  if (data instanceof BigInt64Array || data instanceof BigUint64Array) return Array.from(data, Number);
  return Array.from(data as ArrayLike<number>);
}

// ── gRPC typed contents ────────────────────────────────────────────────────

export function tensorFromContents(input: string, datatype: unknown, shape: unknown, contents: GrpcTensorContents | null | undefined): Tensor {
  const type = parseDatatype(input, datatype);
  const dims = parseShape(input, shape);
  const expected = fieldOf(type);
  for (const field of CONTENTS_FIELDS) {
    if (field !== expected && (contents?.[field]?.length ?? 0) > 0) {
      throw new InvalidArgumentError(`input "${input}": contents use ${field} but datatype ${type} takes ${expected}`);
    }
  }
  const values: ArrayLike<unknown> = contents?.[expected] ?? [];
  if (values.length !== elementCount(dims)) throw countMismatch(input, dims, values.length);
  if (type === 'BYTES') {
    const strings = (values as Uint8Array[]).map((b, i) => decodeUtf8(input, b, i));
    return { datatype: type, shape: dims, data: strings };
  }
  return { datatype: type, shape: dims, data: fromElements(input, type, values) };
}

/** Output → InferTensorContents: typed arrays as they are, 64-bit integers as decimal strings (protobufjs takes no bigint). */
export function contentsOf(tensor: Tensor): GrpcTensorContents {
  const { datatype, data } = tensor;
  const contents: Record<string, ArrayLike<unknown>> = {};
  if (datatype === 'BYTES') contents.bytes_contents = (data as string[]).map((s) => Buffer.from(s, 'utf8'));
  else if (data instanceof BigInt64Array || data instanceof BigUint64Array) contents[fieldOf(datatype)] = Array.from(data, String);
  else contents[fieldOf(datatype)] = data;
  return contents;
}

// ── gRPC raw contents ──────────────────────────────────────────────────────

function copyToArrayBuffer(bytes: Uint8Array): ArrayBuffer {
  // A copy, so the typed array is aligned and owns its memory (gRPC buffers are slices of a message).
  const out = new ArrayBuffer(bytes.byteLength);
  new Uint8Array(out).set(bytes);
  return out;
}

function swapBytes(buffer: ArrayBuffer, width: number): void {
  if (width === 1) return;
  const b = new Uint8Array(buffer);
  for (let i = 0; i < b.length; i += width) b.subarray(i, i + width).reverse();
}

/** BYTES raw: each element is a 4-byte little-endian length, then that many bytes. */
function parseRawStrings(input: string, raw: Uint8Array, count: number): string[] {
  const view = new DataView(raw.buffer, raw.byteOffset, raw.byteLength);
  const out: string[] = [];
  let at = 0;
  while (at < raw.byteLength) {
    if (at + 4 > raw.byteLength) throw new InvalidArgumentError(`input "${input}": raw BYTES end inside a length prefix`);
    const length = view.getUint32(at, true);
    at += 4;
    if (at + length > raw.byteLength) {
      throw new InvalidArgumentError(`input "${input}": raw BYTES element ${out.length} is longer than the data left`);
    }
    out.push(decodeUtf8(input, raw.subarray(at, at + length), out.length));
    at += length;
    if (out.length > count) break;
  }
  if (out.length !== count) {
    throw new InvalidArgumentError(
      `input "${input}": shape holds ${count} elements but the raw BYTES hold ${out.length}${out.length > count ? ' or more' : ''}`,
    );
  }
  return out;
}

export function tensorFromRaw(input: string, datatype: unknown, shape: unknown, raw: Uint8Array): Tensor {
  const type = parseDatatype(input, datatype);
  const dims = parseShape(input, shape);
  const count = elementCount(dims);
  if (type === 'BYTES') return { datatype: type, shape: dims, data: parseRawStrings(input, raw, count) };
  const width = type === 'BOOL' ? 1 : NUMERIC[type].bytes;
  if (raw.byteLength !== count * width) {
    throw new InvalidArgumentError(
      `input "${input}": shape [${dims.join(',')}] of ${type} takes ${count * width} raw bytes but ${raw.byteLength} came`,
    );
  }
  if (type === 'BOOL') return { datatype: type, shape: dims, data: Array.from(raw, (b) => b !== 0) };
  const buffer = copyToArrayBuffer(raw);
  if (!LITTLE_ENDIAN_HOST) swapBytes(buffer, width);
  return { datatype: type, shape: dims, data: NUMERIC[type].view(buffer) };
}

/** Output → raw little-endian bytes, the inverse of tensorFromRaw. */
export function rawOf(tensor: Tensor): Buffer {
  const { datatype, data } = tensor;
  if (datatype === 'BYTES') {
    const parts = (data as string[]).map((s) => Buffer.from(s, 'utf8'));
    const out = Buffer.allocUnsafe(parts.reduce((n, p) => n + 4 + p.length, 0));
    let at = 0;
    for (const part of parts) {
      out.writeUInt32LE(part.length, at);
      part.copy(out, at + 4);
      at += 4 + part.length;
    }
    return out;
  }
  if (datatype === 'BOOL') return Buffer.from((data as boolean[]).map((b) => (b ? 1 : 0)));
  const typed = data as NumericArray;
  const out = Buffer.from(typed.buffer, typed.byteOffset, typed.byteLength);
  if (LITTLE_ENDIAN_HOST) return out;
  const copy = Buffer.from(out);
  swapBytes(copy.buffer as ArrayBuffer, NUMERIC[datatype].bytes);
  return copy;
}

// ── Against the model ──────────────────────────────────────────────────────

export type InputLimits = { /** Largest batch dimension a call may carry. */ maxBatch: number };

/** The length of a shape without its trailing dimensions of 1 (one dimension at least). */
function trimmedLength(shape: readonly number[]): number {
  let end = shape.length;
  while (end > 1 && shape[end - 1] === 1) end--;
  return end;
}

/** Shapes agree when fixed dimensions match; a trailing dimension of 1 may be left out ([N] for [-1,1]). */
function shapeFits(given: readonly number[], declared: readonly number[]): boolean {
  const length = trimmedLength(declared);
  if (trimmedLength(given) !== length) return false;
  for (let i = 0; i < length; i++) if (declared[i] !== -1 && declared[i] !== given[i]) return false;
  return true;
}

function firstNonFinite(data: TensorData, allowNaN: boolean): number {
  if (!(data instanceof Float32Array || data instanceof Float64Array)) return -1;
  for (let i = 0; i < data.length; i++) {
    const v = data[i]!;
    if (!Number.isFinite(v) && !(allowNaN && Number.isNaN(v))) return i;
  }
  return -1;
}

/**
 * The inputs of a call against the model's metadata: every input known and present once,
 * of an accepted datatype and shape, one batch size shared by the inputs that have a batch
 * dimension and within the limit, and finite where the model says so.
 */
export function checkInputs(inputs: TensorMap, model: ModelMetadata, limits: InputLimits): void {
  // Called on every inference call: no map, array or object is built unless a check fails.
  if (inputs.size !== model.inputs.length || model.inputs.some((m) => !inputs.has(m.name))) {
    const declared = model.inputs.map((m) => m.name);
    const unknown = [...inputs.keys()].find((name) => !declared.includes(name));
    if (unknown !== undefined) throw new InvalidArgumentError(`unknown input "${unknown}"; model "${model.name}" takes ${declared.join(', ')}`);
  }
  let batchSize = -1;
  let batchInput = '';
  for (const meta of model.inputs) {
    const tensor = inputs.get(meta.name);
    if (!tensor) throw new InvalidArgumentError(`missing input "${meta.name}"`);
    if (tensor.datatype !== meta.datatype && !meta.accepts?.includes(tensor.datatype)) {
      const accepted = [meta.datatype, ...(meta.accepts ?? [])];
      throw new InvalidArgumentError(`input "${meta.name}" has datatype ${tensor.datatype}; the model takes ${accepted.join(' or ')}`);
    }
    if (!shapeFits(tensor.shape, meta.shape)) {
      throw new InvalidArgumentError(`input "${meta.name}" has shape [${tensor.shape.join(',')}]; the model takes [${meta.shape.join(',')}]`);
    }
    if (meta.shape[0] === -1) {
      const size = tensor.shape[0] ?? 1;
      if (size === 0) throw new InvalidArgumentError(`input "${meta.name}" holds no records`);
      if (size > limits.maxBatch) {
        throw new InvalidArgumentError(`input "${meta.name}" holds a batch of ${size}; the limit is ${limits.maxBatch}`);
      }
      if (batchSize !== -1 && batchSize !== size) {
        throw new InvalidArgumentError(`input "${meta.name}" holds a batch of ${size} but "${batchInput}" one of ${batchSize}`);
      }
      batchSize = size;
      batchInput = meta.name;
    }
    if (meta.finite) {
      const allowNaN = meta.finite === 'nan-missing';
      const at = firstNonFinite(tensor.data, allowNaN);
      if (at >= 0) {
        throw new InvalidArgumentError(`input "${meta.name}": element ${at} is not a finite number${allowNaN ? ' or NaN (a missing value)' : ''}`);
      }
    }
  }
}

/** Requested output names, each known and named once; undefined when all are wanted. */
export function checkRequestedOutputs(names: readonly string[], model: ModelMetadata): string[] | undefined {
  if (names.length === 0) return undefined;
  const known = new Set(model.outputs.map((o) => o.name));
  const seen = new Set<string>();
  for (const name of names) {
    if (!known.has(name)) {
      throw new InvalidArgumentError(`unknown output "${name}"; model "${model.name}" gives ${[...known].join(', ')}`);
    }
    if (seen.has(name)) throw new InvalidArgumentError(`output "${name}" is requested twice`);
    seen.add(name);
  }
  return [...names];
}

/** The outputs to send, in the order requested (or the model's order). */
export function selectOutputs(outputs: TensorMap, requested: readonly string[] | undefined, model: ModelMetadata): [string, Tensor][] {
  const order = requested ?? model.outputs.map((o) => o.name);
  const selected: [string, Tensor][] = [];
  for (const name of order) {
    const tensor = outputs.get(name);
    if (tensor) selected.push([name, tensor]);
  }
  return selected;
}

/** Adds one decoded input to the call's map; a name given twice is an error. */
export function addInput(inputs: TensorMap, name: unknown, decode: (name: string) => Tensor): void {
  if (typeof name !== 'string' || name === '') throw new InvalidArgumentError('every input needs a non-empty name');
  if (inputs.has(name)) throw new InvalidArgumentError(`input "${name}" is given twice`);
  inputs.set(name, decode(name));
}
