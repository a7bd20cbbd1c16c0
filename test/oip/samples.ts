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

/** Little-endian bytes of the samples, written with DataView independently of the codec. */
export function littleEndian(datatype: Datatype, values: (number | boolean | string)[]): Buffer {
  if (datatype === 'BYTES') {
    return Buffer.concat(
      (values as string[]).flatMap((s) => {
        const bytes = Buffer.from(s, 'utf8');
        const length = Buffer.alloc(4);
        length.writeUInt32LE(bytes.length);
        return [length, bytes];
      }),
    );
  }
  if (datatype === 'BOOL') return Buffer.from((values as boolean[]).map(Number));
  const width = { UINT8: 1, INT8: 1, UINT16: 2, INT16: 2, UINT32: 4, INT32: 4, FP32: 4, UINT64: 8, INT64: 8, FP64: 8 }[datatype];
  const view = new DataView(new ArrayBuffer(values.length * width));
  (values as number[]).forEach((v, i) => {
    const at = i * width;
    const write = {
      UINT8: () => view.setUint8(at, v),
      INT8: () => view.setInt8(at, v),
      UINT16: () => view.setUint16(at, v, true),
      INT16: () => view.setInt16(at, v, true),
      UINT32: () => view.setUint32(at, v, true),
      INT32: () => view.setInt32(at, v, true),
      FP32: () => view.setFloat32(at, v, true),
      FP64: () => view.setFloat64(at, v, true),
      UINT64: () => view.setBigUint64(at, BigInt(v), true),
      INT64: () => view.setBigInt64(at, BigInt(v), true),
    }[datatype];
    write();
  });
  return Buffer.from(view.buffer);
}
