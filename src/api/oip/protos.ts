// The project's protos and how proto-loader reads them, shared by the server, the tests' clients
// and the bench.
import type * as protoLoader from '@grpc/proto-loader';
import { fileURLToPath } from 'node:url';

export const OIP_PROTO_PATH = fileURLToPath(new URL('./proto/inference.proto', import.meta.url));
export const HEALTH_PROTO_PATH = fileURLToPath(new URL('./proto/health.proto', import.meta.url));

/** How both the server and the project's own clients read the protos: 64-bit integers as strings, so none loses precision. */
export const PROTO_LOADER_OPTIONS: protoLoader.Options = {
  keepCase: true,
  longs: String,
  enums: String,
  defaults: true,
  oneofs: true,
};
