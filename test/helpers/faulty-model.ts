// A tiny ONNX model that fails the way a real one can, for fault tests. Its graph reads the first
// feature (transaction_amount) as an index into a lookup table of TABLE_ROWS rows with Gather:
// an amount of TABLE_ROWS or more makes onnxruntime's session.run throw ("indices element out of
// data bounds"), and the table's last row holds NaN, so an amount of NAN_AMOUNT comes out as a
// non-finite probability. Any other amount scores SAFE_PROBABILITY.
import { createHash } from 'node:crypto';
import { mkdir, mkdtemp, readFile, writeFile } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import protobuf from 'protobufjs';

export const TABLE_ROWS = 1000;
/** transaction_amount that makes session.run throw. */
export const THROWING_AMOUNT = 5000;
/** transaction_amount whose probability comes out NaN. */
export const NAN_AMOUNT = TABLE_ROWS - 1;
export const SAFE_PROBABILITY = 0.125;

// The fields of onnx.proto this graph needs, with onnx.proto's own field numbers.
const PROTO = `
syntax = "proto3";
package onnx;
message AttributeProto { string name = 1; int64 i = 3; int32 type = 20; }
message TensorProto {
  repeated int64 dims = 1;
  int32 data_type = 2;
  repeated float float_data = 4 [packed = true];
  repeated int64 int64_data = 7 [packed = true];
  string name = 8;
}
message NodeProto {
  repeated string input = 1;
  repeated string output = 2;
  string name = 3;
  string op_type = 4;
  repeated AttributeProto attribute = 5;
}
message Dimension { oneof value { int64 dim_value = 1; string dim_param = 2; } }
message TensorShapeProto { repeated Dimension dim = 1; }
message TensorType { int32 elem_type = 1; TensorShapeProto shape = 2; }
message TypeProto { TensorType tensor_type = 1; }
message ValueInfoProto { string name = 1; TypeProto type = 2; }
message GraphProto {
  repeated NodeProto node = 1;
  string name = 2;
  repeated TensorProto initializer = 5;
  repeated ValueInfoProto input = 11;
  repeated ValueInfoProto output = 12;
}
message OperatorSetIdProto { string domain = 1; int64 version = 2; }
message ModelProto {
  int64 ir_version = 1;
  string producer_name = 2;
  GraphProto graph = 7;
  repeated OperatorSetIdProto opset_import = 8;
}
`;
const FLOAT = 1;
const INT64 = 7;
const ATTRIBUTE_INT = 2;

function faultyModelBytes(inputName: string, outputName: string, width: number): Uint8Array {
  const ModelProto = protobuf.parse(PROTO, { keepCase: true }).root.lookupType('onnx.ModelProto');
  const table: number[] = [];
  for (let i = 0; i < TABLE_ROWS; i++) {
    const p = i === NAN_AMOUNT ? NaN : SAFE_PROBABILITY;
    table.push(1 - p, p);
  }
  const io = (name: string, dims: (number | string)[]) => ({
    name,
    type: { tensor_type: { elem_type: FLOAT, shape: { dim: dims.map((d) => (typeof d === 'number' ? { dim_value: d } : { dim_param: d })) } } },
  });
  const ints = (name: string, values: number[]) => ({ name, data_type: INT64, dims: [values.length], int64_data: values });
  const message = ModelProto.fromObject({
    ir_version: 8,
    producer_name: 'scoring-service test/helpers/faulty-model.ts',
    opset_import: [{ domain: '', version: 17 }],
    graph: {
      name: 'faulty_lookup',
      initializer: [
        { name: 'table', data_type: FLOAT, dims: [TABLE_ROWS, 2], float_data: table },
        ints('starts', [0]),
        ints('ends', [1]),
        ints('axes', [1]),
        ints('shape', [-1, 2]),
      ],
      node: [
        { name: 'amount', op_type: 'Slice', input: [inputName, 'starts', 'ends', 'axes'], output: ['amount'] },
        { name: 'index', op_type: 'Cast', input: ['amount'], output: ['index'], attribute: [{ name: 'to', i: INT64, type: ATTRIBUTE_INT }] },
        { name: 'lookup', op_type: 'Gather', input: ['table', 'index'], output: ['looked_up'] },
        { name: 'flatten', op_type: 'Reshape', input: ['looked_up', 'shape'], output: [outputName] },
      ],
      input: [io(inputName, ['N', width])],
      output: [io(outputName, ['N', 2])],
    },
  });
  return ModelProto.encode(message).finish();
}

/**
 * Writes a model repository whose fraud/1 is the faulty model, beside a manifest copied from
 * modelDir's (same input encoding); returns the repository's root, a new temp dir.
 */
export async function writeFaultyModel(modelDir: string): Promise<string> {
  const manifest = JSON.parse(await readFile(join(modelDir, 'manifest.json'), 'utf8'));
  const bytes = faultyModelBytes(manifest.input.name, manifest.output.name, manifest.input.width);
  const root = await mkdtemp(join(tmpdir(), 'faulty-model-'));
  const dir = join(root, 'fraud', '1');
  await mkdir(dir, { recursive: true });
  await writeFile(join(dir, 'model.onnx'), bytes);
  const sha256 = createHash('sha256').update(bytes).digest('hex');
  const faulty = { ...manifest, version: `fraud-faulty-1.0.0+${sha256.slice(0, 8)}`, file: 'model.onnx', bytes: bytes.length, sha256 };
  await writeFile(join(dir, 'manifest.json'), JSON.stringify(faulty, null, 2));
  return root;
}
