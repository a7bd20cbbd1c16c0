// How a model and one of its versions are named: in the repository's directories, in MODELS, and
// (later) in routes and job parameters. One grammar for all, so a name valid in one place is valid
// in every other.
import { z } from 'zod';

/** A model or alias name: a directory name that is safe in a URL path and a Redis key. */
export const MODEL_NAME_PATTERN = /^[A-Za-z0-9][A-Za-z0-9_.-]{0,127}$/;
/** A version directory: a positive integer without leading zeros, as in Triton and the Open Inference Protocol. */
export const VERSION_PATTERN = /^[1-9][0-9]{0,8}$/;

export const ModelNameSchema = z.string().regex(MODEL_NAME_PATTERN, 'a model name: letters, digits, _ . - (first a letter or digit)');
export const AliasNameSchema = ModelNameSchema.refine((s) => !VERSION_PATTERN.test(s), 'an alias is not a version number');
export const VersionSchema = z.coerce.number().int().positive().max(999_999_999);

/**
 * Which version of a model to use. Neither set: the alias `champion` when the model has one,
 * else `latest` (the highest version). `latest` is an alias every model has.
 */
export interface VersionSelector {
  version?: number;
  alias?: string;
}

export interface ModelSelector extends VersionSelector {
  name: string;
}

export const DEFAULT_ALIAS = 'champion';
export const LATEST_ALIAS = 'latest';

/** Parses one `name`, `name:version` or `name@alias`. Throws an Error saying what is wrong. */
export function parseModelSelector(text: string): ModelSelector {
  const match = /^([^:@]+)(?::([^:@]+)|@([^:@]+))?$/.exec(text.trim());
  if (!match) throw new Error(`"${text}" is not name, name:version or name@alias`);
  const [, name, version, alias] = match;
  if (!MODEL_NAME_PATTERN.test(name!)) throw new Error(`"${name}" is not a model name`);
  if (version !== undefined) {
    if (!VERSION_PATTERN.test(version)) throw new Error(`"${version}" in "${text}" is not a positive integer version`);
    return { name: name!, version: Number(version) };
  }
  if (alias !== undefined) {
    if (!AliasNameSchema.safeParse(alias).success) throw new Error(`"${alias}" in "${text}" is not an alias name`);
    return { name: name!, alias };
  }
  return { name: name! };
}

/** Parses MODELS: comma-separated selectors; empty means every model of the repository. */
export function parseModelSelectors(text: string): ModelSelector[] {
  return text
    .split(',')
    .map((s) => s.trim())
    .filter(Boolean)
    .map(parseModelSelector);
}

export function formatModelSelector(selector: ModelSelector): string {
  if (selector.version !== undefined) return `${selector.name}:${selector.version}`;
  if (selector.alias !== undefined) return `${selector.name}@${selector.alias}`;
  return selector.name;
}
