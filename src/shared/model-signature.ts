// What a model takes and gives, read from its ONNX graph, and the record schema that follows from
// it. Shared because the api validates records against a model it does not hold: a worker
// publishes the signature, the api builds the same zod schema from it.
import { z } from 'zod';

/** Element types the service can feed and read, named as onnxruntime's `Tensor.Type`. */
export const ELEMENT_TYPES = ['float32', 'float64', 'int64', 'int32', 'bool', 'string'] as const;
export type ElementType = (typeof ELEMENT_TYPES)[number];

export function isElementType(type: string): type is ElementType {
  return (ELEMENT_TYPES as readonly string[]).includes(type);
}

/** The Open Inference Protocol's name of each element type. */
export const OIP_DATATYPE: Readonly<Record<ElementType, string>> = {
  float32: 'FP32',
  float64: 'FP64',
  int64: 'INT64',
  int32: 'INT32',
  bool: 'BOOL',
  string: 'BYTES',
};

/** A dimension: its size, or the graph's symbolic name for it (`"N"`), or -1 when the graph names none. */
export type Dim = number | string;

export const TensorSignatureSchema = z.object({
  name: z.string(),
  type: z.enum(ELEMENT_TYPES),
  /** The whole shape, the leading batch dimension included. */
  shape: z.array(z.union([z.number(), z.string()])).describe('The whole shape, the batch dimension (a name or -1) first'),
});
export type TensorSignature = z.infer<typeof TensorSignatureSchema>;

export const ModelSignatureSchema = z.object({ inputs: z.array(TensorSignatureSchema), outputs: z.array(TensorSignatureSchema) });
export type ModelSignature = z.infer<typeof ModelSignatureSchema>;

/** How one record carries an input: one scalar, or an array of `length` values. */
export type RecordValueShape = { kind: 'scalar' } | { kind: 'array'; length: number };

const isBatchDim = (d: Dim | undefined) => typeof d === 'string' || d === -1;

/**
 * What a record holds for an input of this shape, or why the service cannot batch it: the leading
 * dimension must be the batch (symbolic), and each record one scalar (`[N]`, `[N,1]`) or `k` values (`[N,k]`).
 */
export function recordValueShape(shape: readonly Dim[]): RecordValueShape | { problem: string } {
  const text = `[${shape.join(', ')}]`;
  if (shape.length === 0) return { problem: 'has shape [] (a scalar or an unknown rank): the service needs a leading batch dimension' };
  if (!isBatchDim(shape[0])) {
    return { problem: `has shape ${text}: its first dimension is fixed, the service needs a variable batch dimension` };
  }
  if (shape.length === 1) return { kind: 'scalar' };
  const k = shape[1];
  if (shape.length === 2 && typeof k === 'number' && k >= 1) return k === 1 ? { kind: 'scalar' } : { kind: 'array', length: k };
  return { problem: `has shape ${text}: the service takes [N], [N,1] or [N,k] with a fixed k` };
}

/** Values one record contributes to a tensor of this input. */
export function valuesPerRecord(input: TensorSignature): number {
  const shape = recordValueShape(input.shape);
  if ('problem' in shape) throw new RangeError(`input ${input.name} ${shape.problem}`);
  return shape.kind === 'scalar' ? 1 : shape.length;
}

// The largest finite float32: a bigger JSON number would reach the model as Infinity.
const FLOAT32_MAX = 3.4028234663852886e38;

function elementSchema(type: ElementType): z.ZodType {
  switch (type) {
    case 'float32':
      return z.number().min(-FLOAT32_MAX).max(FLOAT32_MAX);
    case 'float64':
      return z.number();
    case 'int32':
      return z.int32();
    case 'int64':
      // JSON numbers are exact up to 2^53; larger int64 values cannot arrive intact.
      return z.int();
    case 'bool':
      return z.boolean();
    case 'string':
      return z.string();
  }
}

/** The schema of one record's value for `input`. Throws a RangeError for a shape the service cannot take. */
export function recordValueSchema(input: TensorSignature): z.ZodType {
  const shape = recordValueShape(input.shape);
  if ('problem' in shape) throw new RangeError(`input ${input.name} ${shape.problem}`);
  const element = elementSchema(input.type);
  return shape.kind === 'scalar' ? element : z.array(element).length(shape.length);
}

/**
 * A strict object with one field per graph input: a wrong, missing or extra field is an issue
 * whose path names it.
 */
export function recordSchemaFromSignature(signature: Pick<ModelSignature, 'inputs'>) {
  return z.strictObject(Object.fromEntries(signature.inputs.map((input) => [input.name, recordValueSchema(input)])));
}

/** A JSON record of a model whose record schema comes from its signature. */
export type SignatureRecord = Record<string, unknown>;
