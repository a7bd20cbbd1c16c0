// What the live workers hold of the model repository, as the api sees it: read from their
// heartbeat snapshots every second and at once when a worker announces a change. It answers
// which version a call goes to (resolve(): one rule for every route), the record schema of a
// version, and what GET /models shows.
import type { RedisClient } from '../shared/redis.ts';
import { subscribeChannel } from '../shared/pubsub.ts';
import { z } from 'zod';
import type { LogSink } from '../shared/logger.ts';
import {
  drainsOnline,
  type ModelView,
  type RepositorySnapshot,
  type VersionSnapshot,
  type VersionState,
  type VersionView,
} from '../shared/model-catalog.ts';
import { recordSchemaFromSignature } from '../shared/model-signature.ts';
import { DEFAULT_ALIAS, LATEST_ALIAS, type VersionSelector } from '../shared/model-selector.ts';
import { recordSchemaFromFields } from '../shared/record-fields.ts';
import { resolveVersion, type ModelFacts } from '../shared/version-resolution.ts';
import { inShare } from '../shared/routing.ts';
import { ModelNotFoundError, ModelUnavailableError } from '../shared/errors.ts';
import { modelsChangedChannel } from '../shared/keys.ts';
import { readLiveWorkers } from '../shared/worker-registry.ts';

export type { ModelView, VersionView };

export type Resolved = { name: string; version: number; view: VersionView };

/** Where a call naming no version goes (the canary's share or the champion), and the shadow that also scores it, if any. */
export type Routed = Resolved & { shadow?: Resolved };

interface ModelState extends ModelView {
  byVersion: Map<number, VersionView>;
  /** alias → versions some worker still serves it with (a moved alias whose new target loads). */
  serving: Map<string, Set<number>>;
}

export const REGISTRY_REFRESH_MS = 1_000;

const STATE_RANK: Record<VersionState, number> = { loaded: 3, loading: 2, failed: 1, unavailable: 0 };

export type ModelRegistryOptions = {
  redis: RedisClient;
  /** The api's subscriber connection (shared with the reply channel: handlers filter by channel). */
  subscriber?: RedisClient;
  prefix: string;
  logger: LogSink;
  refreshMs?: number;
  /** Called after each refresh with what is servable, e.g. to create producers ahead of the first call. */
  onRefresh?: (registry: ModelRegistry) => void;
};

export class ModelRegistry {
  readonly #options: ModelRegistryOptions;
  #models = new Map<string, ModelState>();
  #workers = 0;
  /** Live workers that published a snapshot, at the last refresh. */
  #snapshots = 0;
  #timer: NodeJS.Timeout | undefined;
  #unsubscribe: (() => Promise<void>) | undefined;
  #refreshing: Promise<void> | undefined;
  #again = false;
  readonly #schemas = new Map<string, { key: string; schema: z.ZodType<Record<string, unknown>> }>();
  readonly #schemaOfView = new WeakMap<VersionView, z.ZodType<Record<string, unknown>>>();

  constructor(options: ModelRegistryOptions) {
    this.#options = options;
  }

  async start(): Promise<void> {
    const { subscriber } = this.#options;
    if (subscriber) {
      this.#unsubscribe = subscribeChannel(subscriber, modelsChangedChannel(this.#options.prefix), () => void this.refresh(), this.#options.logger);
    }
    this.#timer = setInterval(() => void this.refresh(), this.#options.refreshMs ?? REGISTRY_REFRESH_MS);
    this.#timer.unref();
    await this.refresh();
  }

  close(): void {
    clearInterval(this.#timer);
    // Not awaited: while Redis is away an unsubscribe would wait for it, and the connection closes next anyway.
    void this.#unsubscribe?.();
  }

  /** Re-reads the live workers' snapshots. A refresh asked for while one runs runs once more after it. */
  refresh(): Promise<void> {
    if (this.#refreshing) {
      this.#again = true;
      return this.#refreshing;
    }
    this.#refreshing = this.#read()
      .catch((err: unknown) => this.#options.logger.debug({ err }, 'model registry refresh failed'))
      .finally(() => {
        this.#refreshing = undefined;
        if (this.#again) {
          this.#again = false;
          void this.refresh();
        }
      });
    return this.#refreshing;
  }

  /** Live workers at the last refresh. */
  get workers(): number {
    return this.#workers;
  }

  list(): ModelView[] {
    return [...this.#models.values()].sort((a, b) => a.name.localeCompare(b.name)).map(view);
  }

  get(name: string): ModelView | undefined {
    const m = this.#models.get(name);
    return m && view(m);
  }

  /** Per model, the versions held by at least one live worker. */
  held(): Record<string, number[]> {
    const held: Record<string, number[]> = {};
    for (const m of this.#models.values()) {
      const versions = m.versions.filter((v) => v.state === 'loaded').map((v) => v.version);
      if (versions.length > 0) held[m.name] = versions;
    }
    return held;
  }

  /**
   * The version a call goes to, by the service's one rule (shared/version-resolution.ts) over what
   * the live workers report: a version is servable when one of them holds it loaded. Throws
   * ModelNotFoundError (no such model, version or alias) or ModelUnavailableError (it exists, no
   * live worker can serve it).
   */
  resolve(name: string, selector: VersionSelector = {}): Resolved {
    const m = this.#models.get(name);
    if (!m) {
      // With no live worker there is no one to say what the repository holds: not found cannot be told from not held.
      if (this.#snapshots === 0) throw new ModelUnavailableError(`No live worker holds a model (model ${name} asked for)`);
      throw new ModelNotFoundError(`Model ${name} is not in the repository`);
    }
    const r = resolveVersion(facts(m), selector);
    if (!r.ok) throw r.code === 'model_not_found' ? new ModelNotFoundError(r.message) : new ModelUnavailableError(r.message);
    return { name, version: r.version, view: m.byVersion.get(r.version)! };
  }

  /**
   * The version a call naming no version goes to, by the model's routing.json: the canary when
   * `key` falls in its share and it is servable, else the champion by resolve()'s rule; and the
   * shadow version when `key` falls in its share, it is servable and it is not the version that
   * answers. Throws as resolve() does when the champion is needed and cannot be served.
   */
  route(name: string, key: string): Routed {
    const routing = this.#models.get(name)?.routing ?? {};
    let target: Resolved | undefined;
    if (routing.canary && inShare(key, 'canary', routing.canary.percent)) target = this.#servable(name, routing.canary.version);
    target ??= this.resolve(name);
    const shadow =
      routing.shadow && routing.shadow.version !== target.version && inShare(key, 'shadow', routing.shadow.percent)
        ? this.#servable(name, routing.shadow.version)
        : undefined;
    return shadow ? { ...target, shadow } : target;
  }

  /** route(), and when it fails, once more after reading the workers' snapshots again (as resolveFresh). */
  async routeFresh(name: string, key: string): Promise<Routed> {
    try {
      return this.route(name, key);
    } catch (error) {
      if (!(error instanceof ModelNotFoundError || error instanceof ModelUnavailableError)) throw error;
      await this.refresh();
      return this.route(name, key);
    }
  }

  /** A version when it can be served now; a canary or shadow that cannot is skipped, never an error. */
  #servable(name: string, version: number): Resolved | undefined {
    try {
      return this.resolve(name, { version });
    } catch {
      return undefined;
    }
  }

  /**
   * resolve(), and when it fails, once more after reading the workers' snapshots again: a worker
   * that has just started (or a version that has just loaded) is servable at once, not a second later.
   */
  async resolveFresh(name: string, selector: VersionSelector = {}): Promise<Resolved> {
    try {
      return this.resolve(name, selector);
    } catch (error) {
      if (!(error instanceof ModelNotFoundError || error instanceof ModelUnavailableError)) throw error;
      await this.refresh();
      return this.resolve(name, selector);
    }
  }

  /**
   * The schema of one record of a resolved version: its manifest's record fields with their value
   * rules, else one field per graph input. Built once per signature.
   */
  recordSchema(resolved: Resolved): z.ZodType<Record<string, unknown>> {
    const { view: v } = resolved;
    // Views are made anew at most once a refresh: the key below is computed once per view, not per call.
    const known = this.#schemaOfView.get(v);
    if (known) return known;
    const key = JSON.stringify([v.fields ?? v.record_fields, v.signature?.inputs]);
    const cacheKey = `${resolved.name}/${resolved.version}`;
    const cached = this.#schemas.get(cacheKey);
    const schema = cached?.key === key ? cached.schema : buildRecordSchema(v);
    if (cached?.schema !== schema) this.#schemas.set(cacheKey, { key, schema });
    this.#schemaOfView.set(v, schema);
    return schema;
  }

  async #read(): Promise<void> {
    const workers = await readLiveWorkers(this.#options.redis, this.#options.prefix);
    // Only workers that drain the online queues make a version servable: a call sent to a version
    // only bulk workers hold would wait out its timeout. A job submitted while no online worker is
    // live is pinned by the first bulk worker that takes a chunk.
    const snapshots = workers.map((w) => w.snapshot).filter((s): s is RepositorySnapshot => s !== undefined && drainsOnline(s));
    this.#workers = workers.length;
    this.#snapshots = snapshots.length;
    const next = merge(snapshots);
    // With no live worker to say what the repository holds, the models last seen stay known (503, not 404).
    if (snapshots.length === 0) {
      for (const [name, m] of this.#models) next.set(name, forgotten(m));
    }
    this.#models = next;
    this.#options.onRefresh?.(this);
  }
}

function describe(v: VersionView): string {
  if (v.state === 'unavailable') return 'held by no live worker';
  return v.reason ? `${v.state}: ${v.reason}` : v.state;
}

/** What the resolution rule reads of one model as the live workers report it. */
function facts(m: ModelState): ModelFacts {
  const versions = new Map(m.versions.map((v) => [v.version, { servable: v.state === 'loaded', why: describe(v) }]));
  // `latest` is the highest version any live worker holds; an alias keeps what some worker still serves it with.
  const serving = new Map<string, Iterable<number>>(m.serving);
  serving.set(
    LATEST_ALIAS,
    m.versions.filter((v) => v.state === 'loaded').map((v) => v.version),
  );
  return { name: m.name, aliases: m.aliases, versions, serving };
}

function view(m: ModelState): ModelView {
  return { name: m.name, versions: m.versions, aliases: m.aliases, routing: m.routing, default_version: m.default_version, problems: m.problems };
}

/** A model no live worker reports: every version unavailable. */
function forgotten(m: ModelState): ModelState {
  const versions = m.versions.map((v): VersionView => ({ version: v.version, state: 'unavailable', workers: 0 }));
  return { ...m, versions, byVersion: new Map(versions.map((v) => [v.version, v])), serving: new Map(), default_version: null };
}

function merge(snapshots: readonly RepositorySnapshot[]): Map<string, ModelState> {
  const models = new Map<string, ModelState>();
  const entry = (name: string): ModelState => {
    let m = models.get(name);
    if (!m) {
      m = { name, versions: [], byVersion: new Map(), aliases: {}, routing: {}, serving: new Map(), default_version: null, problems: [] };
      models.set(name, m);
    }
    return m;
  };
  const version = (m: ModelState, n: number): VersionView => {
    let v = m.byVersion.get(n);
    if (!v) {
      v = { version: n, state: 'unavailable', workers: 0 };
      m.byVersion.set(n, v);
    }
    return v;
  };
  // Newest scan last, so its aliases win.
  const ordered = [...snapshots].sort((a, b) => (a.refreshed_at ?? '').localeCompare(b.refreshed_at ?? ''));
  for (const snapshot of ordered) {
    for (const [name, versions] of Object.entries(snapshot.other_models ?? {})) {
      const m = entry(name);
      for (const n of versions) version(m, n);
    }
    for (const model of snapshot.models) {
      const m = entry(model.name);
      m.aliases = { ...model.aliases };
      m.routing = structuredClone(model.routing ?? {});
      for (const p of model.problems) if (!m.problems.includes(p)) m.problems.push(p);
      for (const n of model.on_disk ?? []) version(m, n);
      for (const [alias, n] of Object.entries(model.serving)) {
        const set = m.serving.get(alias) ?? new Set<number>();
        set.add(n);
        m.serving.set(alias, set);
      }
      for (const v of model.versions) mergeVersion(version(m, v.version), v);
    }
  }
  for (const m of models.values()) {
    m.versions = [...m.byVersion.values()].sort((a, b) => a.version - b.version);
    m.default_version = defaultVersion(m);
  }
  return models;
}

function mergeVersion(into: VersionView, v: VersionSnapshot): void {
  if (v.reason) into.reason = v.reason;
  if (v.state === 'loaded') {
    into.workers++;
    into.display_version = v.display_version;
    into.signature = v.signature;
    if (v.record_fields) into.record_fields = v.record_fields;
    if (v.fields) into.fields = v.fields;
    if (v.record_output) into.record_output = v.record_output;
    if (v.decision) into.decision = v.decision;
    if (v.class_labels) into.class_labels = v.class_labels;
    if (v.ignored_outputs) into.ignored_outputs = v.ignored_outputs;
    if (v.drift) into.drift = v.drift;
  }
  if (STATE_RANK[v.state] > STATE_RANK[into.state]) into.state = v.state;
}

function defaultVersion(m: ModelState): number | null {
  const held = m.versions.filter((v) => v.state === 'loaded').map((v) => v.version);
  const champion = m.aliases[DEFAULT_ALIAS];
  if (champion === undefined) return held.length > 0 ? Math.max(...held) : null;
  if (held.includes(champion)) return champion;
  const previous = [...(m.serving.get(DEFAULT_ALIAS) ?? [])].filter((n) => held.includes(n));
  return previous.length > 0 ? Math.max(...previous) : null;
}

function buildRecordSchema(v: VersionView): z.ZodType<Record<string, unknown>> {
  // A record-encoded version: its manifest's fields with their value rules.
  if (v.fields) return recordSchemaFromFields(v.fields) as z.ZodType<Record<string, unknown>>;
  // A worker of an earlier release publishes the field names only: checked by name.
  if (v.record_fields) return z.strictObject(Object.fromEntries(v.record_fields.map((f) => [f, z.union([z.number(), z.string(), z.boolean()])])));
  if (!v.signature) throw new ModelUnavailableError(`Version ${v.version} has no signature yet`);
  return recordSchemaFromSignature(v.signature) as z.ZodType<Record<string, unknown>>;
}
