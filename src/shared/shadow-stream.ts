// A model's shadow comparisons in Redis, written by the workers (src/worker/shadow-scoring.ts) and
// summarised by the api (GET /models/{name}/shadow). One stream entry holds the comparisons of up
// to ENTRY_RECORDS records of one version pair, in record order: agreement, |score difference|,
// record ids (and contents when SHADOW_STREAM_RECORDS is set). An entry's id is the count of
// records ever compared for the model, so the stream is trimmed by records, not entries: it keeps
// at least the newest SHADOW_STREAM_LENGTH records, however the batches that brought them were sized.
import { shadowCountKey, shadowStreamKey } from './keys.ts';
import type { RedisClient } from './redis.ts';
import type { ShadowSummary } from './schemas/routing.ts';

/** Records per stream entry at most: a bulk chunk's comparisons are written as several. */
export const ENTRY_RECORDS = 1000;

/** The comparisons of one entry, one element per record. */
export type ShadowEntry = {
  answered: number;
  shadow: number;
  agree: (0 | 1 | null)[];
  difference: (number | null)[];
  ids?: (string | null)[];
  records?: unknown[];
};

// Counter and entry in one step, so entry ids rise in the order the records were counted, whichever
// worker wrote them. MINID drops the entries wholly older than the newest ARGV[2] records: exact,
// not '~', which trims only whole nodes of 100 entries (up to 100,000 records more here).
const APPEND = `
local n = redis.call('INCRBY', KEYS[2], ARGV[1])
local fields = {}
for i = 3, #ARGV do fields[#fields + 1] = ARGV[i] end
redis.call('XADD', KEYS[1], 'MINID', math.max(0, n - tonumber(ARGV[2])), n .. '-0', unpack(fields))
return n`;

type ScriptedRedis = RedisClient & {
  shadowAppend(stream: string, count: string, records: number, keep: number, ...fields: string[]): Promise<number>;
};

/** Appends one entry (at most ENTRY_RECORDS records) to a model's stream, keeping the newest `keep` records at least. */
export async function appendShadowEntry(redis: RedisClient, prefix: string, model: string, keep: number, entry: ShadowEntry): Promise<void> {
  const scripted = redis as ScriptedRedis;
  // defineCommand sends EVALSHA and falls back to EVAL once per connection; redefining is harmless.
  if (typeof scripted.shadowAppend !== 'function') redis.defineCommand('shadowAppend', { numberOfKeys: 2, lua: APPEND });
  const fields = [
    'answered',
    String(entry.answered),
    'shadow',
    String(entry.shadow),
    'agree',
    JSON.stringify(entry.agree),
    'difference',
    JSON.stringify(entry.difference),
  ];
  if (entry.ids) fields.push('ids', JSON.stringify(entry.ids));
  if (entry.records) fields.push('records', JSON.stringify(entry.records));
  await scripted.shadowAppend(shadowStreamKey(prefix, model), shadowCountKey(prefix, model), entry.agree.length, keep, ...fields);
}

/** Stream entries read per round trip while collecting the window's records. */
const PAGE = 200;

type Pair = { answered: number; shadow: number; agree: number[]; differences: number[]; compared: number };

/** A stream entry's flat field list as an object. */
export function entryFields(flat: string[]): Record<string, string> {
  const f: Record<string, string> = {};
  for (let i = 0; i + 1 < flat.length; i += 2) f[flat[i]!] = flat[i + 1]!;
  return f;
}

/** The newest `window` compared records of a model's stream, summarised per version pair. */
export async function shadowSummary(redis: RedisClient, prefix: string, model: string, window: number): Promise<ShadowSummary> {
  const key = shadowStreamKey(prefix, model);
  const byPair = new Map<string, Pair>();
  let read = 0;
  let end = '+';
  while (read < window) {
    const entries = await redis.xrevrange(key, end, '-', 'COUNT', PAGE);
    for (const [, flat] of entries) {
      const f = entryFields(flat);
      const agree = JSON.parse(f.agree ?? '[]') as (0 | 1 | null)[];
      const differences = JSON.parse(f.difference ?? '[]') as (number | null)[];
      const pairKey = `${f.answered}>${f.shadow}`;
      let pair = byPair.get(pairKey);
      if (!pair) byPair.set(pairKey, (pair = { answered: Number(f.answered), shadow: Number(f.shadow), agree: [], differences: [], compared: 0 }));
      const take = Math.min(agree.length, window - read);
      for (let i = 0; i < take; i++) {
        if (agree[i] !== null && agree[i] !== undefined) pair.agree.push(agree[i]!);
        if (differences[i] !== null && differences[i] !== undefined) pair.differences.push(differences[i]!);
      }
      pair.compared += take;
      read += take;
      if (read >= window) break;
    }
    if (entries.length < PAGE) break;
    // Exclusive range: the next page starts below the oldest entry read.
    end = `(${entries.at(-1)![0]}`;
  }
  const pairs = [...byPair.values()]
    .filter((p) => p.compared > 0)
    .sort((a, b) => a.answered - b.answered || a.shadow - b.shadow)
    .map((p) => {
      const sorted = p.differences.sort((a, b) => a - b);
      return {
        answered_version: p.answered,
        shadow_version: p.shadow,
        compared: p.compared,
        agreement: p.agree.length === 0 ? null : p.agree.reduce((a, b) => a + b, 0) / p.agree.length,
        mean_difference: sorted.length === 0 ? null : sorted.reduce((a, b) => a + b, 0) / sorted.length,
        p99_difference: sorted.length === 0 ? null : sorted[Math.min(sorted.length - 1, Math.ceil(0.99 * sorted.length) - 1)]!,
      };
    });
  return { model_name: model, window, pairs };
}
