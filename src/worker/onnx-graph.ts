// Writing ONNX models: protobufjs over the subset of onnx.proto beside this file, and the few
// builders a graph needs (attributes, value infos, initializers, a model around a graph). Used by
// the worker to turn a saved XGBoost booster into a graph at load time (xgboost-onnx.ts) and by
// the model build (scripts/model/onnx-export.ts). The bytes depend only on what is given: no timestamps.
import { readFileSync } from 'node:fs';
import protobuf from 'protobufjs';

// Versions onnxruntime-node 1.30 supports; the tree ensembles are unchanged since ai.onnx.ml 3 for
// what is used here, and IR 8 is read by every runtime from 1.10 on.
const IR_VERSION = 8;
export const OPSET_DEFAULT = 17;
export const OPSET_ML = 3;

const root = protobuf.parse(readFileSync(new URL('./onnx.proto', import.meta.url), 'utf8'), { keepCase: true }).root;
const ModelProto = root.lookupType('onnx.ModelProto');
const AttributeType = root.lookupEnum('onnx.AttributeProto.AttributeType').values;
export const DataType = root.lookupEnum('onnx.TensorProto.DataType').values as Record<'FLOAT' | 'INT64' | 'STRING' | 'BOOL' | 'INT32', number>;

export function attrInts(name: string, ints: readonly number[]) {
  return { name, type: AttributeType.INTS, ints };
}
export function attrInt(name: string, i: number) {
  return { name, type: AttributeType.INT, i };
}
export function attrFloats(name: string, floats: readonly number[]) {
  return { name, type: AttributeType.FLOATS, floats };
}
export function attrStrings(name: string, strings: readonly string[]) {
  return { name, type: AttributeType.STRINGS, strings: strings.map((s) => Buffer.from(s, 'utf8')) };
}
export function attrString(name: string, value: string) {
  return { name, type: AttributeType.STRING, s: Buffer.from(value, 'utf8') };
}

/** A graph input or output: its element type and dims (a string is a symbolic dim, such as the batch). */
export function tensorValue(name: string, elemType: number | undefined, dims: readonly (number | string)[]) {
  return {
    name,
    type: {
      tensor_type: {
        elem_type: elemType,
        shape: { dim: dims.map((d) => (typeof d === 'number' ? { dim_value: d } : { dim_param: d })) },
      },
    },
  };
}

export function floatInitializer(name: string, dims: readonly number[], values: ArrayLike<number>) {
  return { name, dims, data_type: DataType.FLOAT, float_data: Array.from(values) };
}

export function int64Initializer(name: string, dims: readonly number[], values: readonly number[]) {
  return { name, dims, data_type: DataType.INT64, int64_data: [...values] };
}

/** A standard (default-domain) or ai.onnx.ml node, named after its first output. */
export function node(op_type: string, input: string[], output: string[], attribute: object[] = [], domain = '') {
  return { name: output[0], op_type, domain, input, output, attribute };
}

export type GraphSpec = {
  name: string;
  producer: string;
  docString?: string;
  nodes: object[];
  inputs: object[];
  outputs: object[];
  initializers?: object[];
  /** False for a graph of standard operators only: its opset_import then names no ai.onnx.ml. */
  mlOps?: boolean;
};

/** Serializes a model around one graph, checked by protobufjs before it is encoded. */
export function encodeModel(graph: GraphSpec): Uint8Array {
  const message = ModelProto.fromObject({
    ir_version: IR_VERSION,
    opset_import: [{ domain: '', version: OPSET_DEFAULT }, ...(graph.mlOps === false ? [] : [{ domain: 'ai.onnx.ml', version: OPSET_ML }])],
    producer_name: graph.producer,
    producer_version: '1.0.0',
    model_version: 1,
    doc_string: graph.docString ?? '',
    graph: {
      name: graph.name,
      node: graph.nodes,
      input: graph.inputs,
      output: graph.outputs,
      initializer: graph.initializers ?? [],
    },
  });
  const problem = ModelProto.verify(message);
  if (problem) throw new Error(`ONNX ModelProto is invalid: ${problem}`);
  return ModelProto.encode(message).finish();
}
