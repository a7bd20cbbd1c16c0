// The generic tensor path: JSON records (one value per graph input, validated against
// recordSchemaFromSignature) → one onnxruntime tensor per input, and output tensors → one JSON
// value per record per output.
import { Tensor } from 'onnxruntime-node';
import { valuesPerRecord, type ElementType, type SignatureRecord, type TensorSignature } from '../shared/model-signature.ts';

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

function encodeInput(input: TensorSignature, records: readonly SignatureRecord[]): Tensor {
  const width = valuesPerRecord(input);
  const rows = records.length;
  // [N] stays [N]; [N,1] and [N,k] become [rows, width], the graph's own rank.
  const dims = input.shape.length === 1 ? [rows] : [rows, width];
  const values = (record: SignatureRecord): readonly unknown[] => {
    const value = record[input.name];
    return width === 1 && !Array.isArray(value) ? [value] : (value as readonly unknown[]);
  };

  if (input.type === 'string') {
    const data: string[] = new Array<string>(rows * width);
    records.forEach((record, r) => values(record).forEach((v, c) => (data[r * width + c] = v as string)));
    return new Tensor('string', data, dims);
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
  return new Tensor(input.type, data, dims);
}

/**
 * One tensor per graph input for `records`, which must already be valid for the signature
 * (recordSchemaFromSignature): encoding does not check values again.
 */
export function encodeRecords(inputs: readonly TensorSignature[], records: readonly SignatureRecord[]): Feeds {
  return Object.fromEntries(inputs.map((input) => [input.name, encodeInput(input, records)]));
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
