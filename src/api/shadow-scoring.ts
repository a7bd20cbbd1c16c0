// Shadow scoring: a call routed with a shadow version (routing.json) is scored by it too, after the
// caller has been answered, through the same online dispatcher (its records are already in hand).
// The two answers are compared record by record here, where both arrive: metrics per version pair,
// and the last pairs in a Redis stream (record ids only) that GET /models/{name}/shadow summarises.
// Nothing here can reach the caller: a shadow call that fails, times out or is refused is counted
// and logged, never thrown.
import type { Counter, Histogram, Meter } from '@opentelemetry/api';
import { shadowStreamKey } from '../shared/keys.ts';
import type { LogSink } from '../shared/logger.ts';
import type { RedisClient } from '../shared/redis.ts';
import type { ShadowSummary } from '../shared/schemas/routing.ts';
import type { ModelRegistry, Routed, VersionView } from './model-registry.ts';
import type { CallResult, OnlineDispatcher } from './online-dispatcher.ts';

export type ShadowScoringOptions = {
  registry: ModelRegistry;
  dispatcher: OnlineDispatcher;
  redis: RedisClient;
  prefix: string;
  meter: Meter;
  logger: LogSink;
  /** How long a shadow call may take (it waits for nobody). */
  timeoutMs: number;
  /** Pairs the stream keeps (SHADOW_STREAM_LENGTH), approximately: Redis trims whole nodes. */
  streamLength: number;
};

/** |score difference| buckets: most pairs of close versions differ by far less than 0.01. */
const DIFFERENCE_BUCKETS = [0.0001, 0.001, 0.005, 0.01, 0.02, 0.05, 0.1, 0.2, 0.5, 1];

/** A record's score: the version's probability field, else the probability column its decision reads. */
function scoreOf(view: VersionView, outputs: Record<string, unknown>): number | undefined {
  const field = view.record_output ?? view.decision?.output;
  const value = field === undefined ? undefined : outputs[field];
  if (typeof value === 'number') return value;
  return undefined;
}

/** What two versions agree or not on: the decision (fraud), else the label (classifiers). */
function verdictOf(outputs: Record<string, unknown>): unknown {
  return outputs.decision ?? outputs.label;
}

export type Comparison = { agree: boolean | undefined; difference: number | undefined };

export function compareOutputs(champion: VersionView, a: Record<string, unknown>, shadow: VersionView, b: Record<string, unknown>): Comparison {
  const x = scoreOf(champion, a);
  const y = scoreOf(shadow, b);
  const va = verdictOf(a);
  const vb = verdictOf(b);
  return {
    agree: va === undefined || vb === undefined ? undefined : JSON.stringify(va) === JSON.stringify(vb),
    difference: x === undefined || y === undefined ? undefined : Math.abs(x - y),
  };
}

export class ShadowScoring {
  readonly #options: ShadowScoringOptions;
  readonly #compared: Counter;
  readonly #agreed: Counter;
  readonly #failed: Counter;
  readonly #difference: Histogram;

  constructor(options: ShadowScoringOptions) {
    this.#options = options;
    const { meter } = options;
    this.#compared = meter.createCounter('scoring_shadow_compared_total', {
      description: 'Records scored by both the answering version and its shadow, per model and version pair',
    });
    this.#agreed = meter.createCounter('scoring_shadow_agreed_total', {
      description: 'Compared records whose decision (or label) the two versions agree on',
    });
    this.#failed = meter.createCounter('scoring_shadow_failed_total', {
      description: 'Shadow calls that gave no comparison (the shadow failed, timed out, was refused, or cannot take the records), by reason',
    });
    this.#difference = meter.createHistogram('scoring_shadow_score_difference', {
      description: '|score difference| between the answering version and its shadow, per record',
      advice: { explicitBucketBoundaries: DIFFERENCE_BUCKETS },
    });
  }

  /**
   * Scores `records` with the call's shadow version once the caller's reply has gone, and compares
   * with `answered` (the outputs the caller got). Does nothing when the call has no shadow.
   */
  after(routed: Routed, records: readonly Record<string, unknown>[], answered: CallResult): void {
    const shadow = routed.shadow;
    if (!shadow) return;
    // The caller's reply is written in this turn; the shadow call starts in the next. Whatever
    // goes wrong in it stays in it: an unhandled rejection would stop the api.
    setImmediate(() => {
      this.#score(routed, shadow, records, answered).catch((err: unknown) => {
        this.#failed.add(1, {
          model_name: routed.name,
          model_version: String(routed.version),
          shadow_version: String(shadow.version),
          reason: 'error',
        });
        this.#options.logger.warn({ err, model_name: routed.name }, 'shadow comparison failed');
      });
    });
  }

  async #score(routed: Routed, shadow: NonNullable<Routed['shadow']>, records: readonly Record<string, unknown>[], answered: CallResult) {
    const { registry, dispatcher, logger } = this.#options;
    const labels = { model_name: routed.name, model_version: String(routed.version), shadow_version: String(shadow.version) };
    const schema = registry.recordSchema(shadow);
    if (!records.every((r) => schema.safeParse(r).success)) {
      this.#failed.add(1, { ...labels, reason: 'records_not_valid_for_shadow' });
      return;
    }
    let result: CallResult;
    try {
      result = await dispatcher.submitShadow(shadow.name, shadow.version, [...records], this.#options.timeoutMs);
    } catch (err) {
      this.#failed.add(1, { ...labels, reason: (err as { code?: string }).code ?? 'error' });
      logger.debug({ err, ...labels }, 'shadow call gave no comparison');
      return;
    }
    const entries: (string | number)[][] = [];
    let agreed = 0;
    for (let i = 0; i < records.length; i++) {
      const c = compareOutputs(routed.view, answered.outputs[i]!, shadow.view, result.outputs[i]!);
      if (c.agree) agreed++;
      if (c.difference !== undefined) this.#difference.record(c.difference, labels);
      const id = records[i]!.id;
      entries.push([
        'answered',
        routed.version,
        'shadow',
        shadow.version,
        'agree',
        c.agree === undefined ? '' : c.agree ? 1 : 0,
        'difference',
        c.difference ?? '',
        ...(typeof id === 'string' ? ['id', id] : []),
      ]);
    }
    this.#compared.add(records.length, labels);
    if (agreed > 0) this.#agreed.add(agreed, labels);
    await this.#append(routed.name, entries).catch((err: unknown) => logger.debug({ err, ...labels }, 'shadow stream write failed'));
  }

  #append(model: string, entries: (string | number)[][]): Promise<unknown> {
    const key = shadowStreamKey(this.#options.prefix, model);
    const pipeline = this.#options.redis.pipeline();
    for (const fields of entries) pipeline.xadd(key, 'MAXLEN', '~', this.#options.streamLength, '*', ...fields);
    return pipeline.exec();
  }
}

/** The newest compared pairs of a model's stream, summarised per version pair. */
export async function shadowSummary(redis: RedisClient, prefix: string, model: string, window: number): Promise<ShadowSummary> {
  const entries = await redis.xrevrange(shadowStreamKey(prefix, model), '+', '-', 'COUNT', window);
  const byPair = new Map<string, { answered: number; shadow: number; agree: number[]; differences: number[]; compared: number }>();
  for (const [, fields] of entries) {
    const f: Record<string, string> = {};
    for (let i = 0; i + 1 < fields.length; i += 2) f[fields[i]!] = fields[i + 1]!;
    const key = `${f.answered}>${f.shadow}`;
    let pair = byPair.get(key);
    if (!pair) byPair.set(key, (pair = { answered: Number(f.answered), shadow: Number(f.shadow), agree: [], differences: [], compared: 0 }));
    pair.compared++;
    if (f.agree !== '' && f.agree !== undefined) pair.agree.push(Number(f.agree));
    if (f.difference !== '' && f.difference !== undefined) pair.differences.push(Number(f.difference));
  }
  const pairs = [...byPair.values()]
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
