// Seeded hostile request bodies for /predict, /predict/batch and /jobs (JSON, NDJSON, CSV):
// valid, mutated and corrupted records, odd values, deep nesting, wrong content types.
/** mulberry32: a small seeded PRNG, so a failure names the body that caused it and replays. */
export function prng(seed: number) {
  let a = seed >>> 0;
  const next = () => {
    a = (a + 0x6d2b79f5) >>> 0;
    let t = a;
    t = Math.imul(t ^ (t >>> 15), t | 1);
    t ^= t + Math.imul(t ^ (t >>> 7), t | 61);
    return ((t ^ (t >>> 14)) >>> 0) / 4294967296;
  };
  const int = (n: number) => Math.floor(next() * n);
  const pick = <T>(items: readonly T[]): T => items[int(items.length)]!;
  return { next, int, pick };
}
type Rng = ReturnType<typeof prng>;

const FIELDS = ['transaction_amount', 'merchant_category', 'card_present', 'hour_of_day', 'days_since_last_transaction'] as const;
const ODD_VALUES: unknown[] = [
  null,
  true,
  false,
  0,
  -1,
  -0,
  1e308,
  -1e308,
  5e-324,
  2 ** 53 + 1,
  24,
  23.5,
  '',
  ' ',
  '12',
  'NaN',
  'Infinity',
  '😀'.repeat(40),
  '\u0000',
  '\ud800',
  'é'.repeat(65),
  'a'.repeat(5000),
  [],
  {},
  [1, 2],
  { a: 1 },
  'grocery',
];
const RAW_NUMBERS = ['1e400', '-1e400', '1e-400', '123456789012345678901234567890', '0x10', '01', '.5', '1.', '-', '+1', 'NaN'];

function validRecord(rng: Rng): Record<string, unknown> {
  return {
    transaction_amount: Number((rng.next() * 1000 + 0.01).toFixed(2)),
    merchant_category: rng.pick(['grocery', 'travel', 'électronique', '家电', 'x']),
    card_present: rng.next() < 0.5,
    hour_of_day: rng.int(24),
    days_since_last_transaction: Number((rng.next() * 30).toFixed(3)),
  };
}

function mutatedRecord(rng: Rng): Record<string, unknown> {
  const record: Record<string, unknown> = validRecord(rng);
  const kind = rng.int(5);
  if (kind === 0) record[rng.pick(FIELDS)] = rng.pick(ODD_VALUES);
  else if (kind === 1) delete record[rng.pick(FIELDS)];
  else if (kind === 2) record[rng.pick(['extra', '__proto__', 'constructor', '', 'id', '🔑'])] = rng.pick(ODD_VALUES);
  else if (kind === 3) for (const f of FIELDS) record[f] = rng.pick(ODD_VALUES);
  return record;
}

/** Breaks a JSON text: truncation, a raw number past float range, a stray byte, deep nesting. */
function corruptJson(rng: Rng, text: string): string {
  switch (rng.int(6)) {
    case 0:
      return text.slice(0, rng.int(text.length));
    case 1:
      return text.replace(/\d+(\.\d+)?/, rng.pick(RAW_NUMBERS));
    case 2: {
      const at = rng.int(text.length);
      return text.slice(0, at) + rng.pick(['\u0000', '{', ']', '"', '\\', '\ufeff', ',', '\ud83d']) + text.slice(at);
    }
    case 3: {
      const depth = 1 + rng.int(3000);
      return text.replace(/:\s*(true|false)/, `:${'['.repeat(depth)}1${']'.repeat(depth)}`);
    }
    case 4:
      return text + text;
    default:
      return text;
  }
}

function csvCell(value: unknown): string {
  const text = typeof value === 'string' ? value : (JSON.stringify(value) ?? '');
  return /[",\r\n]/.test(text) ? `"${text.replaceAll('"', '""')}"` : text;
}

export type Body = { path: string; contentType: string | undefined; body: string };

const WRONG_TYPES = [
  undefined,
  'text/plain',
  'application/xml',
  'multipart/form-data; boundary=x',
  'application/x-www-form-urlencoded',
  'application/json; charset=latin1',
  'APPLICATION/JSON',
  'application/',
  '*/*',
];

function records(rng: Rng, max: number): Record<string, unknown>[] {
  const count = rng.next() < 0.05 ? max + 1 : rng.int(max + 1);
  return Array.from({ length: count }, () => (rng.next() < 0.7 ? validRecord(rng) : mutatedRecord(rng)));
}

export function fuzzBody(rng: Rng): Body {
  const target = rng.int(7);
  const contentType = rng.next() < 0.08 ? rng.pick(WRONG_TYPES) : undefined;
  const corrupt = rng.next() < 0.4;
  const json = (value: unknown) => {
    const text = JSON.stringify(value);
    return corrupt ? corruptJson(rng, text) : text;
  };
  if (target <= 1) {
    const value = rng.next() < 0.5 ? validRecord(rng) : rng.next() < 0.8 ? mutatedRecord(rng) : rng.pick(ODD_VALUES);
    const query = rng.next() < 0.1 ? `?timeout_ms=${rng.pick(['0', '-5', 'abc', '1e9', '30001', ''])}` : '?timeout_ms=30000';
    return { path: `/predict${query}`, contentType: contentType ?? 'application/json', body: json(value) };
  }
  if (target <= 3) {
    const value = rng.next() < 0.85 ? { records: records(rng, 20) } : rng.pick([{ records: {} }, { records: null }, [], { record: [] }, 'x']);
    return { path: '/predict/batch?timeout_ms=30000', contentType: contentType ?? 'application/json', body: json(value) };
  }
  const rows = records(rng, 30);
  if (target === 4) {
    return { path: '/jobs', contentType: contentType ?? 'application/json', body: json({ records: rows }) };
  }
  if (target === 5) {
    const lines = rows.map((r) => (rng.next() < 0.1 ? corruptJson(rng, JSON.stringify(r)) : JSON.stringify(r)));
    return { path: '/jobs', contentType: contentType ?? 'application/x-ndjson', body: lines.join(rng.pick(['\n', '\r\n', '\n\n'])) };
  }
  const header = rng.next() < 0.9 ? [...FIELDS] : [...FIELDS.slice(1), rng.pick(['extra', '', 'id', 'hour_of_day'])];
  const lines = [header.join(','), ...rows.map((r) => header.map((f) => csvCell(r[f])).join(','))];
  let text = lines.join('\n');
  if (corrupt) {
    text = rng.pick([text.replace(',', '"'), text + '\n1,2', text.slice(0, rng.int(text.length)), '\ufeff' + text, text.replaceAll(',', ';')]);
  }
  return { path: '/jobs', contentType: contentType ?? 'text/csv', body: text };
}
