// A reader of UBJSON (ubjson.org, draft 12) as XGBoost writes it: objects with int-prefixed keys,
// and arrays, optimized ones ($type #count) included, whose numbers are big-endian. An optimized
// numeric array becomes a typed array of its type (XGBoost's tree arrays are such), so a booster
// of a million nodes is read without a million boxed numbers. No npm package reads the
// optimized form into typed arrays; this one is ~100 lines.

type Value = null | boolean | number | bigint | string | Value[] | ArrayLike<number> | { [key: string]: Value };

export class UbjsonError extends Error {
  constructor(message: string) {
    super(message);
    this.name = this.constructor.name;
  }
}

const NUMERIC: Record<
  string,
  { size: number; read: (v: DataView, at: number) => number; array: (n: number) => { [i: number]: number; length: number } }
> = {
  i: { size: 1, read: (v, at) => v.getInt8(at), array: (n) => new Int8Array(n) },
  U: { size: 1, read: (v, at) => v.getUint8(at), array: (n) => new Uint8Array(n) },
  I: { size: 2, read: (v, at) => v.getInt16(at), array: (n) => new Int16Array(n) },
  l: { size: 4, read: (v, at) => v.getInt32(at), array: (n) => new Int32Array(n) },
  // int64 values in a booster are counts and ids, well within 2^53.
  L: { size: 8, read: (v, at) => Number(v.getBigInt64(at)), array: (n) => new Float64Array(n) },
  d: { size: 4, read: (v, at) => v.getFloat32(at), array: (n) => new Float32Array(n) },
  D: { size: 8, read: (v, at) => v.getFloat64(at), array: (n) => new Float64Array(n) },
};

export function parseUbjson(bytes: Uint8Array): Value {
  const view = new DataView(bytes.buffer, bytes.byteOffset, bytes.byteLength);
  const text = new TextDecoder('utf-8', { fatal: true });
  let at = 0;

  const need = (n: number) => {
    if (at + n > bytes.length) throw new UbjsonError(`truncated at byte ${at}`);
  };
  const marker = (): string => {
    need(1);
    return String.fromCharCode(bytes[at++]!);
  };
  const number = (type: string): number => {
    const spec = NUMERIC[type];
    if (!spec) throw new UbjsonError(`expected a number at byte ${at - 1}, found '${type}'`);
    need(spec.size);
    const value = spec.read(view, at);
    at += spec.size;
    return value;
  };
  const string = (): string => {
    const length = number(marker());
    need(length);
    const s = text.decode(bytes.subarray(at, at + length));
    at += length;
    return s;
  };
  /** After '[' or '{': the optional $type and #count of an optimized container. */
  const header = (): { type?: string; count?: number } => {
    let type: string | undefined;
    if (bytes[at] === 0x24 /* $ */) {
      at++;
      type = marker();
    }
    if (bytes[at] === 0x23 /* # */) {
      at++;
      return { type, count: number(marker()) };
    }
    if (type) throw new UbjsonError(`a $type without a #count at byte ${at}`);
    return {};
  };

  const value = (type: string): Value => {
    switch (type) {
      case 'Z':
        return null;
      case 'T':
        return true;
      case 'F':
        return false;
      case 'S':
      case 'H':
        return string();
      case 'C':
        need(1);
        return String.fromCharCode(bytes[at++]!);
      case '[': {
        const { type: itemType, count } = header();
        if (count !== undefined && itemType && NUMERIC[itemType]) {
          const spec = NUMERIC[itemType];
          need(count * spec.size);
          const out = spec.array(count);
          for (let i = 0; i < count; i++, at += spec.size) out[i] = spec.read(view, at);
          return out as ArrayLike<number>;
        }
        const items: Value[] = [];
        if (count !== undefined) {
          for (let i = 0; i < count; i++) items.push(value(itemType ?? marker()));
          return items;
        }
        for (let m = marker(); m !== ']'; m = marker()) if (m !== 'N') items.push(value(m));
        return items;
      }
      case '{': {
        const { type: itemType, count } = header();
        const object: Record<string, Value> = {};
        if (count !== undefined) {
          for (let i = 0; i < count; i++) {
            const key = string();
            object[key] = value(itemType ?? marker());
          }
          return object;
        }
        while (bytes[at] !== 0x7d /* } */) {
          need(1);
          const key = string();
          const m = marker();
          object[key] = m === 'N' ? null : value(m);
        }
        at++;
        return object;
      }
      default:
        return number(type);
    }
  };

  const result = value(marker());
  if (at !== bytes.length) throw new UbjsonError(`${bytes.length - at} bytes after the value`);
  return result;
}
