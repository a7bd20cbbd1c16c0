// Which version of a model a call goes to: the one rule, used by the api's registry (over what the
// live workers report) and by a worker's repository (over what it holds). Each side states its
// facts in the form below; the rule itself never differs.
import { DEFAULT_ALIAS, LATEST_ALIAS, type VersionSelector } from './model-selector.ts';

/** One version as the rule sees it: whether calls may go to it now, and if not, why (for the message). */
export type VersionFacts = { servable: boolean; why: string };

export type ModelFacts = {
  name: string;
  /** aliases.json as written (alias → version). */
  aliases: Readonly<Record<string, number>>;
  /** Every version known to exist, servable or not. */
  versions: ReadonlyMap<number, VersionFacts>;
  /**
   * alias (`latest` included) → the versions it serves now besides its target: an alias whose new
   * target is still loading keeps the version it named before, and `latest` is the highest of
   * these. A version listed here is used only while servable.
   */
  serving: ReadonlyMap<string, Iterable<number>>;
};

export type ResolveCode = 'model_not_found' | 'model_unavailable';
export type Resolution = { ok: true; version: number } | { ok: false; code: ResolveCode; message: string };

const notFound = (message: string): Resolution => ({ ok: false, code: 'model_not_found', message });
const unavailable = (message: string): Resolution => ({ ok: false, code: 'model_unavailable', message });

function highestServable(model: ModelFacts, versions: Iterable<number> | undefined): number | undefined {
  let best: number | undefined;
  for (const n of versions ?? []) if (model.versions.get(n)?.servable && (best === undefined || n > best)) best = n;
  return best;
}

/**
 * The version a call goes to: `selector.version` when given, else `selector.alias`, else the alias
 * `champion` when the model has one, else `latest` (the highest servable version). An alias that
 * moved keeps answering with its previous version until the new one is servable.
 * model_not_found: no such version or alias; model_unavailable: it exists but cannot be served now.
 */
export function resolveVersion(model: ModelFacts, selector: VersionSelector = {}): Resolution {
  const { name } = model;
  if (selector.version !== undefined) {
    const v = model.versions.get(selector.version);
    if (!v) return notFound(`Model ${name} has no version ${selector.version}`);
    if (!v.servable) return unavailable(`Model ${name} version ${selector.version} cannot be served (${v.why})`);
    return { ok: true, version: selector.version };
  }
  const alias = selector.alias ?? (model.aliases[DEFAULT_ALIAS] !== undefined ? DEFAULT_ALIAS : LATEST_ALIAS);
  if (alias === LATEST_ALIAS) {
    const latest = highestServable(model, model.serving.get(LATEST_ALIAS));
    if (latest !== undefined) return { ok: true, version: latest };
    if (model.versions.size === 0) return notFound(`Model ${name} has no versions`);
    const states = [...model.versions].map(([n, v]) => `${n}: ${v.why}`).join('; ');
    return unavailable(`No version of model ${name} can be served (${states})`);
  }
  const target = model.aliases[alias];
  if (target === undefined) return notFound(`Model ${name} has no alias ${alias}`);
  const v = model.versions.get(target);
  // A target whose directory is gone ends the alias (404 until it is moved), whatever it served before.
  if (!v) return notFound(`Alias ${alias} of model ${name} names version ${target}, which is not in the repository`);
  if (v.servable) return { ok: true, version: target };
  const previous = highestServable(model, model.serving.get(alias));
  if (previous !== undefined) return { ok: true, version: previous };
  return unavailable(`Alias ${alias} of model ${name} names version ${target}, which cannot be served (${v.why})`);
}
