// ModelInfer's messages, read from and written to the wire by protobufjs itself. ModelInfer is
// the call the service takes most, and @grpc/proto-loader's plain-object form costs it most:
// with `defaults: true` it copies every decoded message into a second object graph, with an
// empty array for each of the eight unset contents fields of every tensor. Here the decoded
// message is read as it is, and the response is encoded from a plain object without a
// conversion pass. Every other method keeps proto-loader's form.
import protobuf from 'protobufjs';
import { OIP_PROTO_PATH } from './protos.ts';
import type { GrpcTensorContents } from './tensors.ts';

const root = new protobuf.Root().loadSync(OIP_PROTO_PATH, { keepCase: true });
const RequestType = root.lookupType('inference.ModelInferRequest');
const ResponseType = root.lookupType('inference.ModelInferResponse');

/** A ModelInfer request: 64-bit integers (shape dimensions, int64 and uint64 contents) as numbers, or as decimal strings past 2^53. */
export type InferRequest = {
  model_name: string;
  model_version: string;
  id: string;
  inputs: { name: string; datatype: string; shape: (number | string)[]; contents: GrpcTensorContents | null }[];
  outputs: { name: string }[];
  raw_input_contents: Uint8Array[];
};

/** protobufjs gives 64-bit integers as long.js Longs. */
type Wire64 = { toNumber(): number; toString(): string };

/** A Long as a number when that is exact, else as its decimal string (Long's base-10 division is slow, so only then). */
function exact(value: Wire64): number | string {
  const n = value.toNumber();
  return Number.isSafeInteger(n) ? n : value.toString();
}

/** Decodes the message and turns its Longs into numbers in place: no second object graph. */
export function decodeInferRequest(bytes: Buffer): InferRequest {
  const request = RequestType.decode(bytes) as unknown as InferRequest;
  for (const input of request.inputs) {
    input.shape = (input.shape as unknown as Wire64[]).map(exact);
    const contents = input.contents;
    // The only contents fields that hold Longs; most calls leave them empty.
    if (contents?.int64_contents?.length) contents.int64_contents = (contents.int64_contents as unknown as Wire64[]).map(exact);
    if (contents?.uint64_contents?.length) contents.uint64_contents = (contents.uint64_contents as unknown as Wire64[]).map(exact);
  }
  return request;
}

type InferParameter = { double_param: number } | { int64_param: number } | { string_param: string } | { bool_param: boolean };

/** A ModelInfer response as the server builds it: 64-bit integers as numbers or decimal strings. */
export type InferResponse = {
  model_name: string;
  model_version: string;
  id: string;
  parameters: Record<string, InferParameter>;
  outputs: { name: string; datatype: string; shape: number[]; contents?: GrpcTensorContents }[];
  raw_output_contents: Uint8Array[];
};

export function encodeInferResponse(response: InferResponse): Buffer {
  return ResponseType.encode(response).finish() as Buffer;
}
