// The row form of a bulk job's chunks, for every model but fraud's columnar encoding: the records
// as the api validated them (their `id` taken out), and per record each output by name. msgpack
// keeps a chunk a fraction of its JSON and is read back without a schema; a generic model's
// records have no fixed fields to lay out in columns.
import { pack, unpack } from 'msgpackr';
import type { SignatureRecord } from './model-signature.ts';

const ROW_CHUNK_FORMAT = 1;
const ROW_RESULTS_FORMAT = 1;

export type RowChunk = {
  records: SignatureRecord[];
  /** The client's ids, '' where a record had none; null when no record of the chunk had one. */
  ids: string[] | null;
};

export type RowResults = {
  /** Per record, each output by name, as /models/{name}/predict/batch returns them. */
  outputs: Record<string, unknown>[];
  ids: string[] | null;
};

/** Gathers validated records (each may carry `id`) and encodes them as one chunk. Reusable after reset(). */
export class RowChunkBuilder {
  readonly capacity: number;
  #records: SignatureRecord[] = [];
  #ids: string[] = [];
  #hasIds = false;

  constructor(capacity: number) {
    this.capacity = capacity;
  }

  get length(): number {
    return this.#records.length;
  }

  get full(): boolean {
    return this.#records.length >= this.capacity;
  }

  push(record: SignatureRecord & { id?: string }): void {
    if (this.full) throw new RangeError('chunk is full');
    const { id, ...inputs } = record;
    this.#records.push(inputs);
    this.#ids.push(id ?? '');
    if (id !== undefined) this.#hasIds = true;
  }

  encode(): Buffer {
    return pack({ v: ROW_CHUNK_FORMAT, records: this.#records, ids: this.#hasIds ? this.#ids : null });
  }

  reset(): void {
    this.#records = [];
    this.#ids = [];
    this.#hasIds = false;
  }
}

/** Throws on a chunk of another format: a worker must not guess at data it cannot read. */
export function decodeRowChunk(buffer: Uint8Array): RowChunk {
  const packed = unpack(buffer) as { v?: number; records: SignatureRecord[]; ids: string[] | null };
  if (packed?.v !== ROW_CHUNK_FORMAT || !Array.isArray(packed.records)) throw new Error(`unknown bulk row chunk format ${String(packed?.v)}`);
  return { records: packed.records, ids: packed.ids };
}

export function encodeRowResults(results: RowResults): Buffer {
  return pack({ v: ROW_RESULTS_FORMAT, outputs: results.outputs, ids: results.ids });
}

export function decodeRowResults(buffer: Uint8Array): RowResults {
  const packed = unpack(buffer) as { v?: number; outputs: Record<string, unknown>[]; ids: string[] | null };
  if (packed?.v !== ROW_RESULTS_FORMAT || !Array.isArray(packed.outputs)) throw new Error(`unknown bulk row results format ${String(packed?.v)}`);
  return { outputs: packed.outputs, ids: packed.ids };
}
