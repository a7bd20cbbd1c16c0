// The compact forms a bulk job's records and results take in Redis, shared by the api (which
// writes input chunks and reads result chunks) and the worker (the other way round).
//
// A chunk is columnar: one typed array per numeric field, the merchant category as codes into a
// per-chunk dictionary, and the client's ids as a string list (or nothing when no record has
// one). 10,000 records take ~200 KB instead of ~1.3 MB of JSON, and no per-record object exists
// in Redis or on the wire. msgpackr frames the columns; typed arrays travel as raw bytes in the
// host's byte order (little-endian on every platform Node and onnxruntime ship for).
import { pack, unpack } from 'msgpackr';
import { FraudRecordSchema, type BulkRecord } from './schemas/record.ts';
import { DECISIONS, type Decision } from './schemas/prediction.ts';

const CHUNK_FORMAT = 1;

/** The record fields a columnar chunk holds: those of the contract's PredictRequest. */
export const COLUMNAR_FIELDS: readonly string[] = Object.keys(FraudRecordSchema.shape);
const RESULTS_FORMAT = 1;

export type ChunkColumns = {
  length: number;
  transactionAmount: Float64Array;
  categoryCodes: Uint32Array;
  categories: string[];
  cardPresent: Uint8Array;
  hourOfDay: Uint8Array;
  daysSinceLastTransaction: Float64Array;
  /** The client's ids, '' where a record had none; null when no record of the chunk had one. */
  ids: string[] | null;
};

function bytesOf(view: ArrayBufferView): Buffer {
  return Buffer.from(view.buffer, view.byteOffset, view.byteLength);
}

/** Copies bytes into a fresh, aligned buffer: msgpackr hands back views at any offset. */
function alignedCopy(bytes: Uint8Array): ArrayBuffer {
  const out = new ArrayBuffer(bytes.byteLength);
  new Uint8Array(out).set(bytes);
  return out;
}

/** Gathers validated records into columns, then encodes them as one chunk. Reusable after reset(). */
export class ChunkBuilder {
  readonly capacity: number;
  #length = 0;
  #amount: Float64Array;
  #codes: Uint32Array;
  #card: Uint8Array;
  #hour: Uint8Array;
  #days: Float64Array;
  #ids: string[] = [];
  #hasIds = false;
  #dictionary = new Map<string, number>();

  constructor(capacity: number) {
    this.capacity = capacity;
    this.#amount = new Float64Array(capacity);
    this.#codes = new Uint32Array(capacity);
    this.#card = new Uint8Array(capacity);
    this.#hour = new Uint8Array(capacity);
    this.#days = new Float64Array(capacity);
  }

  get length(): number {
    return this.#length;
  }

  get full(): boolean {
    return this.#length >= this.capacity;
  }

  push(record: BulkRecord): void {
    if (this.full) throw new RangeError('chunk is full');
    const i = this.#length++;
    this.#amount[i] = record.transaction_amount;
    let code = this.#dictionary.get(record.merchant_category);
    if (code === undefined) {
      code = this.#dictionary.size;
      this.#dictionary.set(record.merchant_category, code);
    }
    this.#codes[i] = code;
    this.#card[i] = record.card_present ? 1 : 0;
    this.#hour[i] = record.hour_of_day;
    this.#days[i] = record.days_since_last_transaction;
    this.#ids.push(record.id ?? '');
    if (record.id !== undefined) this.#hasIds = true;
  }

  encode(): Buffer {
    const n = this.#length;
    return pack({
      v: CHUNK_FORMAT,
      n,
      amount: bytesOf(this.#amount.subarray(0, n)),
      codes: bytesOf(this.#codes.subarray(0, n)),
      categories: [...this.#dictionary.keys()],
      card: bytesOf(this.#card.subarray(0, n)),
      hour: bytesOf(this.#hour.subarray(0, n)),
      days: bytesOf(this.#days.subarray(0, n)),
      ids: this.#hasIds ? this.#ids : null,
    });
  }

  reset(): void {
    this.#length = 0;
    this.#ids = [];
    this.#hasIds = false;
    this.#dictionary = new Map();
  }
}

type PackedChunk = {
  v: number;
  n: number;
  amount: Uint8Array;
  codes: Uint8Array;
  categories: string[];
  card: Uint8Array;
  hour: Uint8Array;
  days: Uint8Array;
  ids: string[] | null;
};

/** Throws on a chunk of another format version: a worker must not guess at data it cannot read. */
export function decodeChunk(buffer: Uint8Array): ChunkColumns {
  const packed = unpack(buffer) as PackedChunk;
  if (packed?.v !== CHUNK_FORMAT) throw new Error(`unknown bulk chunk format ${String(packed?.v)}`);
  return {
    length: packed.n,
    transactionAmount: new Float64Array(alignedCopy(packed.amount)),
    categoryCodes: new Uint32Array(alignedCopy(packed.codes)),
    categories: packed.categories,
    cardPresent: new Uint8Array(alignedCopy(packed.card)),
    hourOfDay: new Uint8Array(alignedCopy(packed.hour)),
    daysSinceLastTransaction: new Float64Array(alignedCopy(packed.days)),
    ids: packed.ids,
  };
}

export type ChunkResults = {
  length: number;
  /** Exactly the float32 values the model returned, as /predict returns them. */
  probabilities: Float32Array;
  /** Index into DECISIONS. */
  decisions: Uint8Array;
  ids: string[] | null;
};

export function decisionCode(decision: Decision): number {
  return DECISIONS.indexOf(decision);
}

export function decisionOf(code: number): Decision {
  const decision = DECISIONS[code];
  if (decision === undefined) throw new RangeError(`unknown decision code ${code}`);
  return decision;
}

type PackedResults = { v: number; n: number; p: Uint8Array; d: Uint8Array; ids: string[] | null };

export function encodeResults(results: ChunkResults): Buffer {
  return pack({
    v: RESULTS_FORMAT,
    n: results.length,
    p: bytesOf(results.probabilities),
    d: bytesOf(results.decisions),
    ids: results.ids,
  });
}

export function decodeResults(buffer: Uint8Array): ChunkResults {
  const packed = unpack(buffer) as PackedResults;
  if (packed?.v !== RESULTS_FORMAT) throw new Error(`unknown bulk results format ${String(packed?.v)}`);
  return {
    length: packed.n,
    probabilities: new Float32Array(alignedCopy(packed.p)),
    decisions: new Uint8Array(alignedCopy(packed.d)),
    ids: packed.ids,
  };
}
