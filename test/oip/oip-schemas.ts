// JSON schemas of the Open Inference Protocol's REST bodies, one per component of the
// protocol's open_inference_rest.yaml (components/schemas), written in zod. Objects stay open
// (the yaml sets no additionalProperties: false); required fields and types follow the yaml.
import { z } from 'zod';

export const parameters = z.looseObject({});

// The health bodies are not in the yaml (which gives only the status); inference_rest.md defines them.
export const live_server_response = z.looseObject({ live: z.boolean() });
export const ready_server_response = z.looseObject({ ready: z.boolean() });
export const ready_model_response = z.looseObject({ name: z.string(), ready: z.boolean() });

export const metadata_server_response = z.looseObject({
  name: z.string(),
  version: z.string(),
  extensions: z.array(z.string()),
});

export const metadata_server_error_response = z.looseObject({ error: z.string() });

export const metadata_tensor = z.looseObject({
  name: z.string(),
  datatype: z.string(),
  shape: z.array(z.int()),
});

export const metadata_model_response = z.looseObject({
  name: z.string(),
  versions: z.array(z.string()).optional(),
  platform: z.string(),
  inputs: z.array(metadata_tensor).optional(),
  outputs: z.array(metadata_tensor).optional(),
});

export const metadata_model_error_response = z.looseObject({ error: z.string() });

type TensorData = (TensorData | number | string | boolean)[];
export const tensor_data: z.ZodType<TensorData> = z.array(z.union([z.lazy(() => tensor_data), z.number(), z.string(), z.boolean()]));

export const request_input = z.looseObject({
  name: z.string(),
  shape: z.array(z.int()),
  datatype: z.string(),
  parameters: parameters.optional(),
  data: tensor_data,
});

export const request_output = z.looseObject({ name: z.string(), parameters: parameters.optional() });

export const inference_request = z.looseObject({
  id: z.string().optional(),
  parameters: parameters.optional(),
  inputs: z.array(request_input),
  outputs: z.array(request_output).optional(),
});

export const response_output = z.looseObject({
  name: z.string(),
  shape: z.array(z.int()),
  datatype: z.string(),
  parameters: parameters.optional(),
  data: tensor_data,
});

export const inference_response = z.looseObject({
  model_name: z.string(),
  model_version: z.string().optional(),
  id: z.string().optional(),
  parameters: parameters.optional(),
  outputs: z.array(response_output),
});

// The yaml leaves `error` optional here; the protocol's text (inference_rest.md) requires it.
export const inference_error_response = z.looseObject({ error: z.string() });

/** Parses `body` with `schema`, failing with zod's account of every mismatch. */
export function conforms<T>(schema: z.ZodType<T>, body: unknown): T {
  const result = schema.safeParse(body);
  if (!result.success) throw new Error(`body does not conform: ${z.prettifyError(result.error)}\n${JSON.stringify(body)}`);
  return result.data;
}
