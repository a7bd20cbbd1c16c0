// Shadow scoring, inside the queue path. A call routed with a shadow version (routing.json) names
// it in its queue job, so its records are already here: once the call's answer has been
// published, the worker scores the same records with the shadow version and compares the two,
// record by record. Comparisons are metrics per version pair and one entry per scored batch in
// the model's Redis stream, which GET /models/{name}/shadow summarises.
//
// It is low-priority work that never reaches a caller: it waits until no online work is in hand
// (OnlineFirst), scores every record waiting for one version pair in one session.run, and is shed,
// counted, when more than MAX_PENDING_RECORDS wait. A shadow that throws, is not held here, or
// cannot take the records is counted by reason and logged, never thrown.
import { setImmediate as nextTurn } from 'node:timers/promises';
import { ENTRY_RECORDS, appendShadowEntry, type ShadowEntry } from '../shared/shadow-stream.ts';
import type { LogSink } from '../shared/logger.ts';
import type { RedisClient } from '../shared/redis.ts';
import type { SignatureRecord } from '../shared/model-signature.ts';
import type { ModelLease, ResolveFailure } from './model-repository.ts';
import type { ModelVersion } from './model-version.ts';
import type { OnlineFirst } from './online-first.ts';
import type { WorkerMetrics } from './worker-metrics.ts';

/** Records waiting for their shadow past which new ones are shed: a busy worker's backlog stays bounded. */
export const MAX_PENDING_RECORDS = 20_000;

export type ShadowScoringOptions = {
  /** A lease on a version held here, or why there is none. */
  acquire: (name: string, version: number) => ModelLease | ResolveFailure;
  redis: RedisClient;
  prefix: string;
  /** SHADOW_STREAM_LENGTH: the newest records the stream keeps, at least. */
  streamLength: number;
  /** SHADOW_STREAM_RECORDS: keep the records' contents in the stream beside their ids. */
  keepRecords: boolean;
  onlineFirst: OnlineFirst;
  metrics: WorkerMetrics;
  logger: LogSink;
};

/** Records of one version pair waiting to be scored by the shadow, with the answers the callers got. */
type Waiting = { answered: ModelVersion; shadow: number; records: Record<string, unknown>[]; outputs: Record<string, unknown>[] };

/** What two versions' answers agree on: the decision (fraud), else the label (classifiers). */
function verdictOf(outputs: Record<string, unknown>): unknown {
  return outputs.decision ?? outputs.label;
}

/** One record's comparison: agreement of the verdicts (null without one) and |score difference| (null without scores). */
export function compareRecord(
  answered: ModelVersion,
  a: Record<string, unknown>,
  shadow: ModelVersion,
  b: Record<string, unknown>,
): { agree: 0 | 1 | null; difference: number | null } {
  const va = verdictOf(a);
  const vb = verdictOf(b);
  const difference = Math.abs(answered.scoreOf(a) - shadow.scoreOf(b));
  return {
    agree: va === undefined || vb === undefined ? null : JSON.stringify(va) === JSON.stringify(vb) ? 1 : 0,
    difference: Number.isFinite(difference) ? difference : null,
  };
}

/** Record-by-record comparisons of two versions' outputs for the same records, in record order. */
export function compareOutputs(
  answered: ModelVersion,
  ours: readonly Record<string, unknown>[],
  shadow: ModelVersion,
  theirs: readonly Record<string, unknown>[],
): Pick<ShadowEntry, 'agree' | 'difference'> {
  const agree: (0 | 1 | null)[] = new Array(ours.length);
  const difference: (number | null)[] = new Array(ours.length);
  for (let i = 0; i < ours.length; i++) {
    const c = compareRecord(answered, ours[i]!, shadow, theirs[i]!);
    agree[i] = c.agree;
    difference[i] = c.difference;
  }
  return { agree, difference };
}

export class ShadowScoring {
  readonly #options: ShadowScoringOptions;
  readonly #waiting = new Map<string, Waiting>();
  #waitingRecords = 0;
  #draining: Promise<void> | undefined;
  #closed = false;

  constructor(options: ShadowScoringOptions) {
    this.#options = options;
  }

  /** Records waiting for their shadow now. */
  get waitingRecords(): number {
    return this.#waitingRecords;
  }

  /** Queues records `answered` has scored (its outputs as the callers got them) for the shadow version. Never throws. */
  add(answered: ModelVersion, shadow: number, records: readonly Record<string, unknown>[], outputs: readonly Record<string, unknown>[]): void {
    if (this.#closed) return;
    if (this.#waitingRecords + records.length > MAX_PENDING_RECORDS) {
      this.failed(answered, shadow, records.length, 'shed');
      return;
    }
    const key = `${answered.name}/${answered.version}>${shadow}`;
    let waiting = this.#waiting.get(key);
    if (!waiting) this.#waiting.set(key, (waiting = { answered, shadow, records: [], outputs: [] }));
    for (let i = 0; i < records.length; i++) {
      waiting.records.push(records[i]!);
      waiting.outputs.push(outputs[i]!);
    }
    this.#waitingRecords += records.length;
    this.#kick();
  }

  /** Scores what is waiting, then stops taking more. */
  async close(): Promise<void> {
    while (this.#draining) await this.#draining;
    this.#closed = true;
  }

  #kick(): void {
    if (this.#draining || this.#waiting.size === 0) return;
    this.#draining = this.#drain().finally(() => {
      this.#draining = undefined;
      this.#kick();
    });
  }

  async #drain(): Promise<void> {
    while (this.#waiting.size > 0) {
      // After the reply's turn, and only while no online work is in hand.
      await nextTurn();
      await this.#options.onlineFirst.idle();
      const [key, waiting] = this.#waiting.entries().next().value!;
      this.#waiting.delete(key);
      this.#waitingRecords -= waiting.records.length;
      await this.#score(waiting).catch((err: unknown) => {
        this.failed(waiting.answered, waiting.shadow, waiting.records.length, 'error');
        this.#options.logger.warn({ err, ...labelsOf(waiting.answered, waiting.shadow) }, 'shadow comparison failed');
      });
    }
  }

  async #score({ answered, shadow, records, outputs }: Waiting): Promise<void> {
    const { logger } = this.#options;
    const labels = labelsOf(answered, shadow);
    const lease = this.#options.acquire(answered.name, shadow);
    if (!('model' in lease)) {
      this.failed(answered, shadow, records.length, 'shadow_not_held');
      return;
    }
    try {
      const model = lease.model;
      // The api checked the records for the answering version; a shadow taking other records checks them again.
      const kept: number[] = [];
      const sameRecords = model.recordSchema.key === answered.recordSchema.key;
      for (let i = 0; i < records.length; i++) if (sameRecords || model.recordSchema.schema.safeParse(records[i]).success) kept.push(i);
      if (kept.length < records.length) this.failed(answered, shadow, records.length - kept.length, 'records_not_valid_for_shadow');
      if (kept.length === 0) return;

      let shadowOutputs: Record<string, unknown>[];
      try {
        shadowOutputs = await model.run(kept.map((i) => records[i]!) as SignatureRecord[]);
      } catch (err) {
        this.failed(answered, shadow, kept.length, 'model_error');
        logger.warn({ err, ...labels, records: kept.length }, 'shadow version failed on a batch');
        return;
      }
      model.observe(shadowOutputs);

      const { agree, difference } = compareOutputs(
        answered,
        kept.map((i) => outputs[i]!),
        model,
        shadowOutputs,
      );
      const ids = kept.map((i) => records[i]!.id);
      await this.publish(answered, model, {
        agree,
        difference,
        ...(ids.some((id) => typeof id === 'string') && { ids: ids.map((id) => (typeof id === 'string' ? id : null)) }),
        ...(this.#options.keepRecords && { records: kept.map((i) => records[i]) }),
      });
    } finally {
      lease.release();
    }
  }

  /**
   * Records the comparisons of records scored by `answered` and by `shadow`, in record order: the
   * metrics, and the model's stream in entries of at most ENTRY_RECORDS. A stream write that fails is logged, not thrown.
   */
  async publish(answered: ModelVersion, shadow: ModelVersion, c: Omit<ShadowEntry, 'answered' | 'shadow'>): Promise<void> {
    const { metrics, logger } = this.#options;
    const labels = labelsOf(answered, shadow.version);
    let agreed = 0;
    for (let i = 0; i < c.agree.length; i++) {
      if (c.agree[i] === 1) agreed++;
      const d = c.difference[i];
      if (d !== null && d !== undefined) metrics.shadowDifference.record(d, labels);
    }
    metrics.shadowCompared.add(c.agree.length, labels);
    if (agreed > 0) metrics.shadowAgreed.add(agreed, labels);
    for (let from = 0; from < c.agree.length; from += ENTRY_RECORDS) {
      const to = Math.min(c.agree.length, from + ENTRY_RECORDS);
      const entry: ShadowEntry = {
        answered: answered.version,
        shadow: shadow.version,
        agree: c.agree.slice(from, to),
        difference: c.difference.slice(from, to),
        ...(c.ids && { ids: c.ids.slice(from, to) }),
        ...(c.records && { records: c.records.slice(from, to) }),
      };
      await appendShadowEntry(this.#options.redis, this.#options.prefix, answered.name, this.#options.streamLength, entry).catch((err: unknown) =>
        logger.debug({ err, ...labels }, 'shadow stream write failed'),
      );
    }
  }

  /** Counts records the shadow gave no comparison for. */
  failed(answered: ModelVersion, shadow: number, records: number, reason: string): void {
    this.#options.metrics.shadowFailed.add(records, { ...labelsOf(answered, shadow), reason });
  }
}

function labelsOf(answered: ModelVersion, shadow: number) {
  return { model_name: answered.name, model_version: String(answered.version), shadow_version: String(shadow) };
}
