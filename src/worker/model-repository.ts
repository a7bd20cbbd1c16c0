// The models a worker holds: every version of every model of MODEL_REPOSITORY (or those MODELS
// names), one onnxruntime session each. refresh() re-reads the directory: a new version or a moved
// alias is loaded beside the old one and calls switch only once it is ready; a version that fails
// leaves the previous one serving; a removed or replaced session is closed after the work that
// holds it (its leases) is done.
import { relative } from 'node:path';
import type { LogSink } from '../shared/logger.ts';
import type { ModelSnapshot, RepositorySnapshot, VersionSnapshot } from '../shared/model-catalog.ts';
import { DEFAULT_ALIAS, LATEST_ALIAS, type ModelSelector, type VersionSelector } from '../shared/model-selector.ts';
import { resolveVersion, type ModelFacts, type ResolveCode, type VersionFacts } from '../shared/version-resolution.ts';
import type { Routing } from '../shared/schemas/routing.ts';
import { ModelLoadError, loadModelVersion, type LoadModelOptions, type ModelVersion } from './model-version.ts';
import { recordOrder } from './manifest.ts';
import { scanRepository, type ScannedModel } from './repository-scan.ts';

export interface ModelRepositoryOptions {
  root: string;
  /** MODELS: the models and versions to hold; empty holds every one. */
  models?: readonly ModelSelector[];
  /** MODEL_POLL_SECONDS for startPolling(); 0 polls only on SIGHUP. Default 10. */
  pollSeconds?: number;
  /** Session threads, and the config's thresholds over the manifests' (merged by the loader, once per version). */
  session?: LoadModelOptions;
  logger?: LogSink;
  /** Called after every change of what is held (a load, a failure, a removal, a moved alias). */
  onChange?: (snapshot: RepositorySnapshot) => void;
}

export type ResolveFailure = { ok: false; error: ResolveCode; message: string };
export type ResolveResult = { ok: true; model: ModelVersion } | ResolveFailure;

/** A version held for one piece of work; release() (idempotent) lets a retired session close. */
export interface ModelLease {
  readonly model: ModelVersion;
  release(): void;
}

interface VersionEntry {
  version: number;
  dir: string;
  fingerprint: string;
  state: VersionSnapshot['state'];
  reason?: string;
  model?: ModelVersion;
  /**
   * No longer selected (MODELS follows an alias that moved away) but still on disk: held only
   * while an alias still serves it, i.e. until the alias's new target has loaded.
   */
  unselected?: boolean;
}

interface ModelEntry {
  name: string;
  versions: Map<number, VersionEntry>;
  /** aliases.json as last read successfully. */
  aliases: Record<string, number>;
  /** routing.json as last read successfully. */
  routing: Routing;
  /** alias → version calls go to now; `latest` included. */
  serving: Map<string, number>;
  /** Every version directory of the last complete scan, selected or not. */
  onDisk: number[];
  problems: string[];
}

export class ModelRepository {
  readonly root: string;
  readonly #options: ModelRepositoryOptions;
  readonly #models = new Map<string, ModelEntry>();
  #problems: string[] = [];
  #others: Record<string, number[]> = {};
  #refreshedAt: Date | undefined;
  #running: Promise<RepositorySnapshot> | undefined;
  #queued: Promise<RepositorySnapshot> | undefined;
  #stopPolling: (() => void) | undefined;
  #closed = false;

  constructor(options: ModelRepositoryOptions) {
    this.root = options.root;
    this.#options = options;
  }

  /**
   * The version a call goes to, by the service's one rule (shared/version-resolution.ts) over what
   * this worker holds: a version is servable once its session is loaded; `serving` (recomputed on
   * every change) keeps a moved alias on its previous version until the new one has loaded.
   */
  resolve(name: string, selector: VersionSelector = {}): ResolveResult {
    const entry = this.#models.get(name);
    if (!entry) return { ok: false, error: 'model_not_found', message: `Model ${name} is not in the repository` };
    const r = resolveVersion(facts(entry), selector);
    if (!r.ok) return { ok: false, error: r.code, message: r.message };
    return { ok: true, model: entry.versions.get(r.version)!.model! };
  }

  /** resolve() and a lease on the version, in one step (nothing can retire it in between). */
  acquire(name: string, selector: VersionSelector = {}): ModelLease | ResolveFailure {
    const resolved = this.resolve(name, selector);
    if (!resolved.ok) return resolved;
    const model = resolved.model.acquire();
    let released = false;
    return {
      model,
      release: () => {
        if (released) return;
        released = true;
        model.release();
      },
    };
  }

  /**
   * Re-reads the repository and loads, reloads or retires what changed. Calls made while one runs
   * share the next run. Resolves with the snapshot once every load it started has settled.
   */
  refresh(): Promise<RepositorySnapshot> {
    if (this.#closed) return Promise.resolve(this.snapshot());
    if (this.#running) {
      this.#queued ??= this.#running.then(() => {
        this.#queued = undefined;
        return this.refresh();
      });
      return this.#queued;
    }
    this.#running = this.#refreshOnce().finally(() => {
      this.#running = undefined;
    });
    return this.#running;
  }

  /**
   * Refreshes every `pollSeconds` (when above 0) and on SIGHUP. Returns (and close() calls) the stop.
   * Failures are logged, never thrown: a poll that cannot read the directory tries again next time.
   */
  startPolling(): () => void {
    this.#stopPolling?.();
    const poll = () => {
      this.refresh().catch((err: unknown) => this.#options.logger?.error({ err }, 'model repository refresh failed'));
    };
    const seconds = this.#options.pollSeconds ?? 10;
    const timer = seconds > 0 ? setInterval(poll, seconds * 1000).unref() : undefined;
    process.on('SIGHUP', poll);
    this.#stopPolling = () => {
      clearInterval(timer);
      process.off('SIGHUP', poll);
      this.#stopPolling = undefined;
    };
    return this.#stopPolling;
  }

  /** Every model, version, alias and state, JSON-serializable. */
  snapshot(): RepositorySnapshot {
    return {
      root: this.root,
      refreshed_at: this.#refreshedAt?.toISOString() ?? null,
      problems: [...this.#problems],
      models: [...this.#models.values()].map((entry) => this.#modelSnapshot(entry)),
      other_models: structuredClone(this.#others),
    };
  }

  /** Every version loaded now (a reloaded version once: its newest session), for the consumers to follow. */
  held(): ModelVersion[] {
    const held: ModelVersion[] = [];
    for (const entry of this.#models.values()) {
      for (const v of entry.versions.values()) if (v.model && !v.model.retired) held.push(v.model);
    }
    return held;
  }

  /** Stops polling and retires every version; resolves when their sessions are closed (leases released). */
  async close(): Promise<void> {
    this.#closed = true;
    this.#stopPolling?.();
    await this.#running?.catch(() => undefined);
    const retiring: Promise<void>[] = [];
    for (const entry of this.#models.values()) {
      for (const v of entry.versions.values()) if (v.model) retiring.push(v.model.retire());
    }
    this.#models.clear();
    await Promise.all(retiring);
  }

  async #refreshOnce(): Promise<RepositorySnapshot> {
    const scan = await scanRepository(this.root, this.#options.models ?? []);
    for (const problem of scan.problems) {
      if (!this.#problems.includes(problem)) this.#options.logger?.warn({ problem }, 'model repository problem');
    }
    this.#problems = scan.problems;
    if (scan.complete) this.#others = scan.others ?? {};
    // An unreadable root (a volume being remounted, a symlink being swapped) is not an empty
    // repository: what is held keeps serving until a scan can see again.
    if (!scan.complete) {
      this.#changed();
      return this.snapshot();
    }

    const seen = new Set(scan.models.map((m) => m.name));
    for (const [name, entry] of this.#models) {
      if (seen.has(name)) continue;
      this.#models.delete(name);
      for (const v of entry.versions.values()) this.#retire(entry, v, 'its model directory is gone');
    }
    const loads = scan.models.flatMap((scanned) => this.#apply(scanned));
    this.#recomputeServing();
    this.#changed();
    // One version at a time: loading is CPU-heavy and the worker serves meanwhile.
    for (const load of loads) await load();
    this.#refreshedAt = new Date();
    return this.snapshot();
  }

  /** Applies one model's scan at once (aliases, removals, `loading` states); returns the loads to run. */
  #apply(scanned: ScannedModel): (() => Promise<void>)[] {
    let entry = this.#models.get(scanned.name);
    if (!entry) {
      entry = { name: scanned.name, versions: new Map(), aliases: {}, routing: {}, serving: new Map(), onDisk: [], problems: [] };
      this.#models.set(scanned.name, entry);
    }
    for (const problem of scanned.problems) {
      if (!entry.problems.includes(problem)) this.#options.logger?.warn({ model_name: scanned.name, problem }, 'model problem');
    }
    entry.problems = scanned.problems;
    entry.onDisk = [...scanned.present].sort((a, b) => a - b);
    // An unreadable aliases.json keeps the aliases last read, so a half-written file moves nothing.
    if (scanned.aliases) entry.aliases = scanned.aliases;
    if (scanned.routing) entry.routing = scanned.routing;

    const selected = new Set(scanned.versions.map((v) => v.version));
    const servingNow = new Set(entry.serving.values());
    for (const v of entry.versions.values()) {
      if (selected.has(v.version)) {
        delete v.unselected;
      } else if (scanned.present.includes(v.version) && v.model && servingNow.has(v.version)) {
        v.unselected = true;
      } else {
        entry.versions.delete(v.version);
        this.#retire(entry, v, scanned.present.includes(v.version) ? 'MODELS no longer selects it' : 'its directory is gone');
      }
    }
    const loads: (() => Promise<void>)[] = [];
    for (const found of scanned.versions) {
      const known = entry.versions.get(found.version);
      // A failed version is tried again only when its files change, not on every poll.
      if (known && known.fingerprint === found.fingerprint) continue;
      const target: VersionEntry = known ?? { version: found.version, dir: found.dir, fingerprint: found.fingerprint, state: 'loading' };
      target.fingerprint = found.fingerprint;
      if (!known) entry.versions.set(found.version, target);
      else if (!known.model) {
        known.state = 'loading';
        delete known.reason;
      }
      loads.push(() => this.#load(entry, target));
    }
    return loads;
  }

  async #load(entry: ModelEntry, target: VersionEntry): Promise<void> {
    const log = { model_name: entry.name, model_version: target.version };
    // Gone (or the repository closed) before its turn came.
    if (this.#closed || entry.versions.get(target.version) !== target) return;
    let model: ModelVersion;
    try {
      model = await loadModelVersion(target.dir, entry.name, target.version, this.#options.session);
    } catch (err) {
      const reason = err instanceof Error ? err.message : String(err);
      // Replaced files that fail keep the loaded session serving, with the reason shown.
      if (!target.model) target.state = 'failed';
      // The reason travels to callers (GET /models, 503 model_unavailable): the file by its name in
      // the version's directory, never where the server keeps it. The log has the path.
      target.reason = shownReason(err, target.dir);
      this.#options.logger?.error({ ...log, reason }, 'model version failed to load');
      this.#recomputeServing();
      this.#changed();
      return;
    }
    if (this.#closed || entry.versions.get(target.version) !== target || this.#models.get(entry.name) !== entry) {
      void model.retire(); // removed while it loaded
      return;
    }
    const previous = target.model;
    target.model = model;
    target.state = 'loaded';
    delete target.reason;
    this.#recomputeServing();
    if (previous) void previous.retire();
    this.#options.logger?.info({ ...log, display_version: model.displayVersion, reloaded: Boolean(previous) }, 'model version loaded');
    this.#changed();
  }

  #retire(entry: ModelEntry, v: VersionEntry, why: string): void {
    if (v.model) {
      this.#options.logger?.info({ model_name: entry.name, model_version: v.version, why }, 'model version retired');
      void v.model.retire();
    }
  }

  /** Points each alias at its target when loaded, else keeps its previous version while that is still held. */
  #recomputeServing(): void {
    for (const entry of this.#models.values()) {
      const loaded = [...entry.versions.values()].filter((v) => v.model && !v.unselected).map((v) => v.version);
      const serving = new Map<string, number>();
      const previousLatest = entry.serving.get(LATEST_ALIAS);
      if (loaded.length > 0) serving.set(LATEST_ALIAS, Math.max(...loaded));
      else if (previousLatest !== undefined && entry.versions.get(previousLatest)?.model) serving.set(LATEST_ALIAS, previousLatest);
      for (const [alias, target] of Object.entries(entry.aliases)) {
        if (entry.versions.get(target)?.model) serving.set(alias, target);
        else if (entry.versions.has(target)) {
          // The target is loading or failed: the version the alias named before keeps serving.
          // A target whose directory is gone ends the alias instead (404 until it is moved).
          const previous = entry.serving.get(alias);
          if (previous !== undefined && entry.versions.get(previous)?.model) serving.set(alias, previous);
        }
      }
      entry.serving = serving;
      const served = new Set(serving.values());
      for (const v of [...entry.versions.values()]) {
        if (v.unselected && !served.has(v.version)) {
          entry.versions.delete(v.version);
          this.#retire(entry, v, 'MODELS no longer selects it');
        }
      }
    }
  }

  #changed(): void {
    this.#options.onChange?.(this.snapshot());
  }

  #modelSnapshot(entry: ModelEntry): ModelSnapshot {
    const defaultAlias = entry.aliases[DEFAULT_ALIAS] !== undefined ? DEFAULT_ALIAS : LATEST_ALIAS;
    return {
      name: entry.name,
      versions: [...entry.versions.values()].sort((a, b) => a.version - b.version).map(versionSnapshot),
      aliases: { ...entry.aliases },
      routing: structuredClone(entry.routing),
      serving: Object.fromEntries(entry.serving),
      default_version: entry.serving.get(defaultAlias) ?? null,
      on_disk: [...entry.onDisk],
      problems: [...entry.problems],
    };
  }
}

/** A load failure as callers may see it: the file by its name in the version's directory, no server path. */
function shownReason(err: unknown, dir: string): string {
  if (err instanceof ModelLoadError) return `${relative(dir, err.file)}: ${err.problem}`;
  // Not one of the loader's own errors, so its message may say anything: the log has it.
  return 'an unexpected error (the worker log has it)';
}

/** What the resolution rule reads of one model held here. */
function facts(entry: ModelEntry): ModelFacts {
  const versions = new Map<number, VersionFacts>();
  for (const v of entry.versions.values()) {
    versions.set(v.version, { servable: Boolean(v.model), why: v.reason ? `${v.state}: ${v.reason}` : v.state });
  }
  const serving = new Map<string, number[]>();
  for (const [alias, n] of entry.serving) serving.set(alias, [n]);
  return { name: entry.name, aliases: entry.aliases, versions, serving };
}

function versionSnapshot(v: VersionEntry): VersionSnapshot {
  const snapshot: VersionSnapshot = { version: v.version, state: v.state };
  if (v.reason) snapshot.reason = v.reason;
  const model = v.model;
  if (!model) return snapshot;
  snapshot.display_version = model.displayVersion;
  snapshot.signature = model.signature;
  if (model.ignoredOutputs.length > 0) snapshot.ignored_outputs = [...model.ignoredOutputs];
  if (model.recordEncoding) {
    snapshot.record_fields = model.recordEncoding.features.map((f) => f.name);
    snapshot.fields = structuredClone(recordOrder(model.recordEncoding));
    if (model.manifest?.output?.field) snapshot.record_output = model.manifest.output.field;
  }
  if (model.decision) {
    snapshot.decision = { output: model.decision.output, labels: [...model.decision.thresholds.map((t) => t.label), model.decision.otherwise] };
  }
  if (Object.keys(model.classLabels).length > 0) {
    snapshot.class_labels = Object.fromEntries(Object.entries(model.classLabels).map(([k, v]) => [k, [...v]]));
  }
  if (model.drift) snapshot.drift = { psi: model.drift.psi ?? null, window: model.drift.window, scores: model.drift.scores };
  snapshot.leases = model.leases;
  return snapshot;
}
