// Hand-built ONNX graphs of standard operators, standing in for "a model.onnx written by another
// tool": encoded here with protobufjs straight from the ONNX schema, not by the project's exporter
// (scripts/model/onnx-export.ts), so the repository is tested on files it did not make.
import { readFileSync } from 'node:fs';
import protobuf from 'protobufjs';

const root = protobuf.parse(readFileSync(new URL('../../src/worker/onnx.proto', import.meta.url), 'utf8'), {
  keepCase: true,
}).root;
const ModelProto = root.lookupType('onnx.ModelProto');

// TensorProto.DataType numbers from the ONNX specification.
export const ONNX_TYPE = { float32: 1, int32: 6, int64: 7, string: 8, bool: 9, float64: 11, float16: 10 } as const;
type OnnxTypeName = keyof typeof ONNX_TYPE;

export interface ValueSpec {
  name: string;
  type: OnnxTypeName;
  shape: (number | string)[];
}

export interface NodeSpec {
  op: string;
  inputs: string[];
  outputs: string[];
  domain?: string;
  attributes?: Record<string, number | number[] | string | string[]>;
}

export interface InitializerSpec {
  name: string;
  type: 'float32' | 'int64';
  dims: number[];
  values: number[];
}

function attribute(name: string, value: number | number[] | string | string[]) {
  // AttributeType numbers: FLOAT 1, INT 2, STRING 3, INTS 7, STRINGS 8.
  if (typeof value === 'string') return { name, type: 3, s: Buffer.from(value) };
  if (typeof value === 'number') return Number.isInteger(value) ? { name, type: 2, i: value } : { name, type: 1, f: value };
  if (value.every((v) => typeof v === 'string')) return { name, type: 8, strings: value.map((v) => Buffer.from(v)) };
  return { name, type: 7, ints: value };
}

function valueInfo(v: ValueSpec) {
  return {
    name: v.name,
    type: {
      tensor_type: {
        elem_type: ONNX_TYPE[v.type],
        shape: { dim: v.shape.map((d) => (typeof d === 'number' ? { dim_value: d } : { dim_param: d })) },
      },
    },
  };
}

/** Encodes a graph of `nodes` as an ONNX model (IR 8, opset 17, ai.onnx.ml 3). */
export function buildOnnxGraph(spec: { inputs: ValueSpec[]; outputs: ValueSpec[]; nodes: NodeSpec[]; initializers?: InitializerSpec[] }): Uint8Array {
  const message = ModelProto.fromObject({
    ir_version: 8,
    opset_import: [
      { domain: '', version: 17 },
      { domain: 'ai.onnx.ml', version: 3 },
    ],
    producer_name: 'test/helpers/onnx-graphs.ts',
    graph: {
      name: 'test_graph',
      node: spec.nodes.map((n, i) => ({
        name: `node_${i}`,
        op_type: n.op,
        domain: n.domain ?? '',
        input: n.inputs,
        output: n.outputs,
        attribute: Object.entries(n.attributes ?? {}).map(([k, v]) => attribute(k, v)),
      })),
      initializer: (spec.initializers ?? []).map((t) => ({
        name: t.name,
        dims: t.dims,
        data_type: ONNX_TYPE[t.type],
        ...(t.type === 'float32' ? { float_data: t.values } : { int64_data: t.values }),
      })),
      input: spec.inputs.map(valueInfo),
      output: spec.outputs.map(valueInfo),
    },
  });
  const problem = ModelProto.verify(message);
  if (problem) throw new Error(problem);
  return ModelProto.encode(message).finish();
}

/**
 * One input of each element type the service takes, each passed through Identity to an output of
 * the same type and shape, plus `numeric_sum`: the float32 sum per record of every numeric and
 * boolean input (Cast → ReduceSum → Sum), so a value that reaches the wrong row or column shows.
 */
export function allTypesGraph(): Uint8Array {
  const inputs: ValueSpec[] = [
    { name: 'f32', type: 'float32', shape: ['N', 3] },
    { name: 'f64', type: 'float64', shape: ['N'] },
    { name: 'i64', type: 'int64', shape: ['N', 1] },
    { name: 'i32', type: 'int32', shape: ['N', 2] },
    { name: 'flag', type: 'bool', shape: ['N'] },
    { name: 'word', type: 'string', shape: ['N'] },
  ];
  const nodes: NodeSpec[] = inputs.map((i) => ({ op: 'Identity', inputs: [i.name], outputs: [`${i.name}_out`] }));
  const numeric = inputs.filter((i) => i.type !== 'string');
  for (const i of numeric) {
    nodes.push({ op: 'Cast', inputs: [i.name], outputs: [`${i.name}_f`], attributes: { to: ONNX_TYPE.float32 } });
    // Rank-1 inputs become [N,1] so every part reduces over axis 1 alike.
    const twoD = i.shape.length === 1 ? `${i.name}_2d` : `${i.name}_f`;
    if (i.shape.length === 1) nodes.push({ op: 'Unsqueeze', inputs: [`${i.name}_f`, 'axis1'], outputs: [twoD] });
    nodes.push({ op: 'ReduceSum', inputs: [twoD, 'axis1'], outputs: [`${i.name}_sum`], attributes: { keepdims: 0 } });
  }
  nodes.push({ op: 'Sum', inputs: numeric.map((i) => `${i.name}_sum`), outputs: ['numeric_sum'] });
  return buildOnnxGraph({
    inputs,
    outputs: [...inputs.map((i) => ({ ...i, name: `${i.name}_out` })), { name: 'numeric_sum', type: 'float32', shape: ['N'] }],
    initializers: [{ name: 'axis1', type: 'int64', dims: [1], values: [1] }],
    nodes,
  });
}

/**
 * A linear softmax classifier: `scores` = Softmax(x·W + b), `label` = ArgMax, on a float32 [N,k] input.
 * `weights` is k rows of `classes` values.
 */
export function softmaxGraph(weights: number[][], bias: number[], inputName = 'x'): Uint8Array {
  const k = weights.length;
  const classes = bias.length;
  return buildOnnxGraph({
    inputs: [{ name: inputName, type: 'float32', shape: ['batch', k] }],
    outputs: [
      { name: 'scores', type: 'float32', shape: ['batch', classes] },
      { name: 'label', type: 'int64', shape: ['batch'] },
    ],
    initializers: [
      { name: 'W', type: 'float32', dims: [k, classes], values: weights.flat() },
      { name: 'b', type: 'float32', dims: [classes], values: bias },
    ],
    nodes: [
      { op: 'MatMul', inputs: [inputName, 'W'], outputs: ['xw'] },
      { op: 'Add', inputs: ['xw', 'b'], outputs: ['logits'] },
      { op: 'Softmax', inputs: ['logits'], outputs: ['scores'], attributes: { axis: 1 } },
      { op: 'ArgMax', inputs: ['scores'], outputs: ['label'], attributes: { axis: 1, keepdims: 0 } },
    ],
  });
}

/** A graph whose only input is float16, a type the service does not take. */
export function float16Graph(): Uint8Array {
  return buildOnnxGraph({
    inputs: [{ name: 'h', type: 'float16', shape: ['N', 2] }],
    outputs: [{ name: 'h_out', type: 'float16', shape: ['N', 2] }],
    nodes: [{ op: 'Identity', inputs: ['h'], outputs: ['h_out'] }],
  });
}

/** A string input mapped to an integer code by ai.onnx.ml LabelEncoder (-1 for anything else). */
export function labelEncoderGraph(keys: string[]): Uint8Array {
  return buildOnnxGraph({
    inputs: [{ name: 'color', type: 'string', shape: ['N'] }],
    outputs: [{ name: 'code', type: 'int64', shape: ['N'] }],
    nodes: [
      {
        op: 'LabelEncoder',
        domain: 'ai.onnx.ml',
        inputs: ['color'],
        outputs: ['code'],
        attributes: { keys_strings: keys, values_int64s: keys.map((_, i) => i), default_int64: -1 },
      },
    ],
  });
}

/** A float32 input whose batch dimension is fixed at 1, as an export without dynamic axes leaves it. */
export function fixedBatchGraph(): Uint8Array {
  return buildOnnxGraph({
    inputs: [{ name: 'x', type: 'float32', shape: [1, 3] }],
    outputs: [{ name: 'y', type: 'float32', shape: [1, 3] }],
    nodes: [{ op: 'Identity', inputs: ['x'], outputs: ['y'] }],
  });
}
