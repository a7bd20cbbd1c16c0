// The columnar form of an online call, the one the Open Inference Protocol paths send: each
// input as the caller sent it (its protocol datatype), rows first, so a [100, 5] tensor travels as
// its 100 × 5 values and never as 100 records. msgpack frames the inputs; numeric data travels as
// raw little-endian bytes (the host's order on every platform Node and onnxruntime ship for), BOOL
// as one byte per value, BYTES as strings. Queue job data is JSON, so the frame goes as base64.
// The api packs tensors it has checked; the worker unpacks them into session.run's feeds.
import { pack, unpack } from 'msgpackr';

/** The Open Inference Protocol's datatypes. */
export const DATATYPES = ['BOOL', 'UINT8', 'UINT16', 'UINT32', 'UINT64', 'INT8', 'INT16', 'INT32', 'INT64', 'FP32', 'FP64', 'BYTES'] as const;
export type Datatype = (typeof DATATYPES)[number];

export type NumericArray =
  Uint8Array | Uint16Array | Uint32Array | BigUint64Array | Int8Array | Int16Array | Int32Array | BigInt64Array | Float32Array | Float64Array;
/** BOOL: 0 or 1 per value; BYTES: strings; every other datatype its typed array. */
export type ColumnData = NumericArray | string[];

/** One input: `rows × width` values, row-major. */
export type Column = { datatype: Datatype; width: number; data: ColumnData };
export type Columns = { rows: number; inputs: Map<string, Column> };

/**
 * How each non-BYTES datatype lays its values out: bytes per value, and the typed array over a
 * buffer of them (BOOL: one byte per value). The protocol's wire codecs (api/oip/tensors.ts) and
 * this frame read raw bytes the same way.
 */
export const TYPED_LAYOUT: Readonly<Record<Exclude<Datatype, 'BYTES'>, { bytes: number; view: (b: ArrayBuffer) => NumericArray }>> = {
  BOOL: { bytes: 1, view: (b) => new Uint8Array(b) },
  UINT8: { bytes: 1, view: (b) => new Uint8Array(b) },
  UINT16: { bytes: 2, view: (b) => new Uint16Array(b) },
  UINT32: { bytes: 4, view: (b) => new Uint32Array(b) },
  UINT64: { bytes: 8, view: (b) => new BigUint64Array(b) },
  INT8: { bytes: 1, view: (b) => new Int8Array(b) },
  INT16: { bytes: 2, view: (b) => new Int16Array(b) },
  INT32: { bytes: 4, view: (b) => new Int32Array(b) },
  INT64: { bytes: 8, view: (b) => new BigInt64Array(b) },
  FP32: { bytes: 4, view: (b) => new Float32Array(b) },
  FP64: { bytes: 8, view: (b) => new Float64Array(b) },
};

/** [name, datatype, width, bytes or strings] per input. */
type PackedInput = [string, Datatype, number, Uint8Array | string[]];
type Packed = { rows: number; inputs: PackedInput[] };

/** The call's columns as job data carries them. */
export function packColumns(columns: Columns): string {
  const inputs: PackedInput[] = [];
  for (const [name, { datatype, width, data }] of columns.inputs) {
    const bytes = Array.isArray(data) ? data : new Uint8Array(data.buffer, data.byteOffset, data.byteLength);
    inputs.push([name, datatype, width, bytes]);
  }
  return Buffer.from(pack({ rows: columns.rows, inputs } satisfies Packed)).toString('base64');
}

/**
 * Columns from job data. Throws when the frame is not one packColumns wrote: an unknown datatype,
 * or a column whose length is not rows × width (a job of another release, or a corrupt one).
 */
export function unpackColumns(packed: string): Columns {
  const { rows, inputs } = unpack(Buffer.from(packed, 'base64')) as Packed;
  if (!Number.isInteger(rows) || rows < 1 || !Array.isArray(inputs)) throw new Error('columns: no rows or inputs');
  const out = new Map<string, Column>();
  for (const [name, datatype, width, raw] of inputs) {
    if (!Number.isInteger(width) || width < 1) throw new Error(`columns: input ${name} has width ${width}`);
    let data: ColumnData;
    if (datatype === 'BYTES') {
      if (!Array.isArray(raw)) throw new Error(`columns: input ${name} is BYTES without strings`);
      data = raw;
    } else {
      const spec = TYPED_LAYOUT[datatype];
      if (!spec || !(raw instanceof Uint8Array)) throw new Error(`columns: input ${name} has datatype ${String(datatype)}`);
      if (raw.byteLength !== rows * width * spec.bytes) throw new Error(`columns: input ${name} holds ${raw.byteLength} bytes`);
      // msgpack hands back views at any offset; a typed array needs its own aligned buffer.
      const aligned = new ArrayBuffer(raw.byteLength);
      new Uint8Array(aligned).set(raw);
      data = spec.view(aligned);
    }
    if (data.length !== rows * width) throw new Error(`columns: input ${name} holds ${data.length} values, not ${rows} × ${width}`);
    out.set(name, { datatype, width, data });
  }
  return { rows, inputs: out };
}

/**
 * The records the columns hold, one object per row: a value per input, an array when the input has
 * more than one per row. For the rare paths that take records (a shadow version scoring the call).
 */
export function recordsOf(columns: Columns): Record<string, unknown>[] {
  const records: Record<string, unknown>[] = Array.from({ length: columns.rows }, () => ({}));
  for (const [name, { datatype, width, data }] of columns.inputs) {
    const value = (i: number): unknown => {
      const v = data[i];
      if (datatype === 'BOOL') return v === 1;
      return typeof v === 'bigint' ? Number(v) : v;
    };
    for (let r = 0; r < columns.rows; r++) {
      records[r]![name] = width === 1 ? value(r) : Array.from({ length: width }, (_, c) => value(r * width + c));
    }
  }
  return records;
}
