// GET /models/{name}/shadow: the newest shadow comparisons of a model, summarised per pair of
// versions. The workers write them (src/worker/shadow-scoring.ts): one stream entry per scored
// batch of a version pair, each record's agreement and |score difference| in record order.
import { shadowStreamKey } from '../shared/keys.ts';
import type { RedisClient } from '../shared/redis.ts';
import type { ShadowSummary } from '../shared/schemas/routing.ts';

/** Stream entries read per round trip while collecting the window's records. */
const PAGE = 200;

type Pair = { answered: number; shadow: number; agree: number[]; differences: number[]; compared: number };

function fieldsOf(flat: string[]): Record<string, string> {
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
      const f = fieldsOf(flat);
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
