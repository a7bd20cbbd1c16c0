// The generic tensor path: a batch's calls (JSON records, one value per graph input, validated
// against recordSchemaFromSignature; or a protocol call's columns) → one onnxruntime tensor per
// input, and output tensors → one JSON value per record per output.
import { Tensor } from 'onnxruntime-node';
import { valuesPerRecord, type ElementType, type SignatureRecord, type TensorSignature } from '../shared/model-signature.ts';
import type { Column, Columns } from '../shared/tensor-columns.ts';

type Feeds = Record<string, Tensor>;

function typedArray(type: Exclude<ElementType, 'string'>, length: number) {
  switch (type) {
    case 'float32':
      return new Float32Array(length);
    case 'float64':
      return new Float64Array(length);
    case 'int32':
      return new Int32Array(length);
    case 'int64':
      return new BigInt64Array(length);
    case 'bool':
      return new Uint8Array(length);
  }
}

type Values = Float32Array | Float64Array | Int32Array | BigInt64Array | Uint8Array | string[];

/** One input's values for `records`, row-major in the graph's element type. */
function recordValues(input: TensorSignature, records: readonly SignatureRecord[]): Values {
  const width = valuesPerRecord(input);
  const rows = records.length;
  const values = (record: SignatureRecord): readonly unknown[] => {
    const value = record[input.name];
    return width === 1 && !Array.isArray(value) ? [value] : (value as readonly unknown[]);
  };

  if (input.type === 'string') {
    const data: string[] = new Array<string>(rows * width);
    records.forEach((record, r) => values(record).forEach((v, c) => (data[r * width + c] = v as string)));
    return data;
  }
  const data = typedArray(input.type, rows * width);
  for (let r = 0; r < rows; r++) {
    const row = values(records[r]!);
    for (let c = 0; c < width; c++) {
      const v = row[c];
      if (data instanceof BigInt64Array) data[r * width + c] = BigInt(v as number);
      else if (input.type === 'bool') data[r * width + c] = v ? 1 : 0;
      else data[r * width + c] = v as number;
    }
  }
  return data;
}

/**
 * One input's values from its column as the caller sent it, in the graph's element type: as they
 * are when the datatypes agree, else converted (FP64 given for a float32 input, INT32 for int64).
 */
export function columnValues(type: ElementType, column: Column): Values {
  const { data } = column;
  if (type === 'string') return data as string[];
  const numeric = data as ArrayLike<number | bigint>;
  switch (type) {
    case 'float32':
      return numeric instanceof Float32Array ? numeric : Float32Array.from(numeric, Number);
    case 'float64':
      return numeric instanceof Float64Array ? numeric : Float64Array.from(numeric, Number);
    case 'int32':
      return numeric instanceof Int32Array ? numeric : Int32Array.from(numeric, Number);
    case 'int64':
      return numeric instanceof BigInt64Array ? numeric : BigInt64Array.from(numeric, (v) => BigInt(v));
    case 'bool':
      return column.datatype === 'BOOL' ? (numeric as Uint8Array) : Uint8Array.from(numeric, (v) => (v ? 1 : 0));
  }
}

/** The pieces of one input, in call order, as one array. */
function concat(type: ElementType, pieces: readonly Values[], length: number): Values {
  if (pieces.length === 1) return pieces[0]!;
  if (type === 'string') return (pieces as string[][]).flat();
  const out = typedArray(type, length);
  let at = 0;
  for (const piece of pieces) {
    (out as Float32Array).set(piece as Float32Array, at);
    at += piece.length;
  }
  return out;
}

/** A batch's part: one call's records, or one call's columns. */
export type InputPart = readonly SignatureRecord[] | Columns;

export function partRows(part: InputPart): number {
  return Array.isArray(part) ? part.length : (part as Columns).rows;
}

/**
 * One tensor per graph input for the parts of a batch, in order. Records must already be valid for
 * the signature (recordSchemaFromSignature), and columns checked against the version's metadata
 * (the api did both): encoding does not check values again.
 */
export function encodeParts(inputs: readonly TensorSignature[], parts: readonly InputPart[]): Feeds {
  const rows = parts.reduce((n, p) => n + partRows(p), 0);
  const feeds: Feeds = {};
  for (const input of inputs) {
    const pieces = parts.map((p) => (Array.isArray(p) ? recordValues(input, p) : columnValues(input.type, (p as Columns).inputs.get(input.name)!)));
    const width = valuesPerRecord(input);
    // [N] stays [N]; [N,1] and [N,k] become [rows, width], the graph's own rank.
    feeds[input.name] = new Tensor(input.type, concat(input.type, pieces, rows * width), input.shape.length === 1 ? [rows] : [rows, width]);
  }
  return feeds;
}

/** Row-major float32 features of a batch's parts, each encoded its own way, as one array. */
export function concatFeatures(pieces: readonly Float32Array[]): Float32Array {
  return concat(
    'float32',
    pieces,
    pieces.reduce((n, p) => n + p.length, 0),
  ) as Float32Array;
}

// int64 values beyond 2^53 do not survive as JSON numbers; they are given as decimal strings.
function jsonElement(value: unknown): unknown {
  if (typeof value === 'bigint') {
    return value >= BigInt(Number.MIN_SAFE_INTEGER) && value <= BigInt(Number.MAX_SAFE_INTEGER) ? Number(value) : value.toString();
  }
  return value;
}

/** Nested arrays of `data[offset…]` in the shape `dims`. */
function nest(data: ArrayLike<unknown>, offset: number, dims: readonly number[], bool: boolean): unknown {
  if (dims.length === 0) {
    const v = data[offset];
    return bool ? v !== 0 : jsonElement(v);
  }
  const [first, ...rest] = dims;
  const stride = rest.reduce((a, b) => a * b, 1);
  return Array.from({ length: first! }, (_, i) => nest(data, offset + i * stride, rest, bool));
}

/**
 * Splits each output tensor by its leading (batch) dimension: per record, a scalar for an output of
 * shape [N] or [N,1] and nested arrays otherwise. Throws when an output's leading dimension is not
 * `rows` (a graph that does not keep the batch cannot be split per record).
 */
export function decodeOutputs(
  outputs: readonly TensorSignature[],
  results: Readonly<Record<string, unknown>>,
  rows: number,
): Record<string, unknown>[] {
  const perRecord: Record<string, unknown>[] = Array.from({ length: rows }, () => ({}));
  for (const output of outputs) {
    const tensor = results[output.name];
    if (!(tensor instanceof Tensor)) throw new Error(`output ${output.name} is missing from the run's results`);
    const dims = tensor.dims;
    if (dims[0] !== rows) {
      throw new Error(`output ${output.name} has shape [${dims.join(', ')}], expected ${rows} rows first`);
    }
    const scalar = dims.length === 1 || (dims.length === 2 && dims[1] === 1 && output.shape[1] === 1);
    const inner = scalar ? [] : dims.slice(1);
    const stride = inner.reduce((a, b) => a * b, 1);
    const data = tensor.data as ArrayLike<unknown>;
    const bool = tensor.type === 'bool';
    for (let r = 0; r < rows; r++) perRecord[r]![output.name] = nest(data, r * stride, inner, bool);
  }
  return perRecord;
}
