// What the protocol layer needs from the service. REST and gRPC speak to this interface
// only; the service binds it to its model registry and online dispatcher.
import type { Datatype, Tensor, TensorMap } from './tensors.ts';

export type { Datatype, Tensor, TensorMap };

export type TensorMetadata = {
  name: string;
  /** The datatype ModelMetadata reports. */
  datatype: Datatype;
  /** -1 for a dimension of variable size (the batch dimension). */
  shape: number[];
  /** Further datatypes the input accepts (e.g. FP64 beside FP32); not reported on the wire. */
  accepts?: readonly Datatype[];
  /**
   * Reject ±Infinity in this input, and NaN too unless it is 'nan-missing' (a booster's input,
   * where NaN is a missing value).
   */
  finite?: boolean | 'nan-missing';
};

export type ModelMetadata = {
  name: string;
  /** Every version the server holds, as strings (the protocol's versions are strings). */
  versions: string[];
  /** "onnx_onnxv1" for an ONNX Runtime model. */
  platform: string;
  inputs: TensorMetadata[];
  outputs: TensorMetadata[];
};

export type ServerMetadata = { name: string; version: string; extensions: string[] };

export type InferOptions = {
  /** Epoch ms at which the caller stops waiting: the job's deadline. */
  deadlineMs: number;
  /** Outputs to compute, already checked against the model's metadata; all when absent. */
  outputs?: readonly string[];
  /** Aborted when the client goes away (HTTP connection closed, gRPC call cancelled). */
  signal?: AbortSignal;
  /**
   * What a call naming no version is routed by (routing.json's canary and shadow shares, sticky
   * per key): the client's X-Routing-Key (gRPC metadata x-routing-key), else the request's id.
   */
  routingKey?: string;
  /**
   * The metadata the transport checked the tensors against (modelMetadata's answer). A backend
   * checks them again only when the version it resolves now has other metadata (it moved since).
   */
  checked?: ModelMetadata;
};

export type InferTimings = { queueMs: number; batchWaitMs: number; inferenceMs: number; batchRecords: number };

export type InferResult = {
  modelName: string;
  /** The version that actually scored the call. */
  modelVersion: string;
  outputs: TensorMap;
  timings: InferTimings;
};

/**
 * The service as the Open Inference Protocol sees it. Methods throw OipErrors (or the
 * service's AppErrors, mapped by the one error map): UnknownModelError for an unknown model or
 * version, NotServableError when nothing can serve it, DeadlineExceededError, OverloadedError,
 * ModelError (the model's own message), InsufficientStorageError.
 */
export interface InferenceBackend {
  serverMetadata(): ServerMetadata;
  /** Ready to infer: Redis answers and some worker holds a model. */
  isReady(): Promise<boolean>;
  /**
   * The metadata of one version (the one the server picks when `version` is absent).
   * Called before every inference to validate its tensors, so it should answer from memory.
   */
  modelMetadata(name: string, version?: string): Promise<ModelMetadata>;
  /** False when the model is known but no worker holds it; throws UnknownModelError when unknown. */
  modelReady(name: string, version?: string): Promise<boolean>;
  /** Tensors have been validated against modelMetadata(name, version). */
  infer(name: string, version: string | undefined, inputs: TensorMap, options: InferOptions): Promise<InferResult>;
}
