// Sample values of every datatype, shared by the protocol-layer tests.
import type { Datatype } from '../../src/api/oip/tensors.ts';

/** Four values per datatype, reaching the ends of each integer range. */
export const SAMPLES: Record<Datatype, (number | boolean | string)[]> = {
  BOOL: [true, false, false, true],
  UINT8: [0, 1, 200, 255],
  UINT16: [0, 1, 40_000, 65_535],
  UINT32: [0, 1, 3_000_000_000, 4_294_967_295],
  UINT64: [0, 1, 2 ** 40, Number.MAX_SAFE_INTEGER],
  INT8: [-128, -1, 0, 127],
  INT16: [-32_768, -1, 0, 32_767],
  INT32: [-2_147_483_648, -1, 0, 2_147_483_647],
  INT64: [Number.MIN_SAFE_INTEGER, -1, 0, Number.MAX_SAFE_INTEGER],
  FP32: [0.5, -1.25, 1024, 0.125],
  FP64: [0.1, -2.5, 1e300, Math.PI],
  BYTES: ['a', 'héllo', '', '日本語'],
};
