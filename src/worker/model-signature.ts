// Reads a model's signature from its onnxruntime session: what the graph itself says about its
// inputs and outputs, so a bare model.onnx needs no manifest to be served.
import type { InferenceSession } from 'onnxruntime-node';
import { isElementType, recordValueShape, type ModelSignature, type TensorSignature } from '../shared/model-signature.ts';

export interface IgnoredOutput {
  name: string;
  reason: string;
}

export interface SignatureReading {
  signature: ModelSignature;
  /** Outputs the service cannot read (maps, sequences, float16, …): never fetched, listed with why. */
  ignoredOutputs: IgnoredOutput[];
  /** Why the model cannot be served; empty when it can. */
  problems: string[];
}

function describe(meta: InferenceSession.ValueMetadata): TensorSignature | { reason: string } {
  if (!meta.isTensor) return { reason: 'is not a tensor (a map or sequence)' };
  if (!isElementType(meta.type)) return { reason: `has element type ${meta.type}, which the service cannot take` };
  return { name: meta.name, type: meta.type, shape: [...meta.shape] };
}

export function readSignature(session: InferenceSession): SignatureReading {
  const problems: string[] = [];
  const inputs: TensorSignature[] = [];
  for (const meta of session.inputMetadata) {
    const input = describe(meta);
    if ('reason' in input) {
      problems.push(`input ${meta.name} ${input.reason}`);
      continue;
    }
    const shape = recordValueShape(input.shape);
    if ('problem' in shape) problems.push(`input ${meta.name} ${shape.problem}`);
    else inputs.push(input);
  }
  if (session.inputMetadata.length === 0) problems.push('the graph has no inputs');

  const outputs: TensorSignature[] = [];
  const ignoredOutputs: IgnoredOutput[] = [];
  for (const meta of session.outputMetadata) {
    const output = describe(meta);
    if ('reason' in output) ignoredOutputs.push({ name: meta.name, reason: output.reason });
    else outputs.push(output);
  }
  if (outputs.length === 0) {
    problems.push(`no output the service can read (${ignoredOutputs.map((o) => `${o.name} ${o.reason}`).join('; ')})`);
  }
  return { signature: { inputs, outputs }, ignoredOutputs, problems };
}
