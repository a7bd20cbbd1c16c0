// Reads the repository's layout without opening any model: `<root>/<name>/<version>/model.onnx`
// (+ manifest.json), `<root>/<name>/aliases.json` and `<root>/<name>/routing.json`. Junk (stray
// files, non-numeric directories, a bad aliases.json or routing.json) is reported, never thrown, so
// one bad model cannot hide the others.
import { readdir, readFile, stat } from 'node:fs/promises';
import { join } from 'node:path';
import { z } from 'zod';
import { AliasNameSchema, DEFAULT_ALIAS, LATEST_ALIAS, MODEL_NAME_PATTERN, VERSION_PATTERN, type ModelSelector } from '../shared/model-selector.ts';
import { MANIFEST_FILE, MODEL_FILE } from './manifest.ts';
import { XGBOOST_FILES } from './xgboost-onnx.ts';
import { ROUTING_FILE } from '../shared/routing.ts';
import { RoutingSchema, type Routing } from '../shared/schemas/routing.ts';

export const ALIASES_FILE = 'aliases.json';

export interface ScannedVersion {
  version: number;
  dir: string;
  /** Changes when the model file (model.onnx, xgboost.json or xgboost.ubj) or manifest.json is replaced or edited. */
  fingerprint: string;
}

export interface ScannedModel {
  name: string;
  /** The versions to hold (all, or those MODELS selects). */
  versions: ScannedVersion[];
  /** Every version directory present, selected or not. */
  present: number[];
  /** undefined when aliases.json is absent or unusable (then `problems` says why). */
  aliases: Record<string, number> | undefined;
  /** routing.json: {} when absent, undefined when unusable (then `problems` says why). */
  routing: Routing | undefined;
  problems: string[];
}

export interface RepositoryScan {
  /** False when the root itself could not be listed: the scan says nothing about what is there. */
  complete: boolean;
  models: ScannedModel[];
  problems: string[];
  /** Models MODELS does not select, with their version directories. */
  others?: Record<string, number[]>;
}

const AliasesSchema = z.record(
  AliasNameSchema.refine((a) => a !== LATEST_ALIAS, `"${LATEST_ALIAS}" is always the highest version and cannot be set`),
  z.union([z.string().regex(VERSION_PATTERN), z.number().int().positive()]).transform(Number),
);

async function fileFingerprint(file: string): Promise<string> {
  try {
    const s = await stat(file);
    return `${s.ino}:${s.size}:${s.mtimeMs}`;
  } catch {
    return 'absent';
  }
}

async function listDirs(dir: string): Promise<string[]> {
  const entries = await readdir(dir, { withFileTypes: true });
  return entries
    .filter((e) => e.isDirectory())
    .map((e) => e.name)
    .sort();
}

/** A model's JSON file by its schema: `absent` when there is none, else the value or the problem. */
async function readModelFile<T>(file: string, schema: z.ZodType<T>, absent: T): Promise<{ value?: T; problem?: string }> {
  let text: string;
  try {
    text = await readFile(file, 'utf8');
  } catch (error) {
    const code = (error as NodeJS.ErrnoException).code;
    return code === 'ENOENT' ? { value: absent } : { problem: `${file}: cannot be read (${code})` };
  }
  let json: unknown;
  try {
    json = JSON.parse(text);
  } catch (error) {
    return { problem: `${file}: is not valid JSON (${(error as Error).message})` };
  }
  const parsed = schema.safeParse(json);
  if (!parsed.success) return { problem: `${file}: ${z.prettifyError(parsed.error)}` };
  return { value: parsed.data };
}

/** Which versions of a model the selectors ask for: all (undefined) or this set. */
function wantedVersions(name: string, selectors: readonly ModelSelector[], aliases: Record<string, number>, versions: number[]) {
  const mine = selectors.filter((s) => s.name === name);
  if (selectors.length === 0 || mine.some((s) => s.version === undefined && s.alias === undefined)) return undefined;
  const wanted = new Set<number>();
  for (const s of mine) {
    if (s.version !== undefined) wanted.add(s.version);
    else if (s.alias === LATEST_ALIAS) {
      if (versions.length > 0) wanted.add(Math.max(...versions));
    } else if (aliases[s.alias!] !== undefined) wanted.add(aliases[s.alias!]!);
  }
  return wanted;
}

/**
 * Scans `root`. With `selectors` (MODELS) non-empty, only the models and versions they name are
 * listed; a selector's alias is followed to its current version.
 */
export async function scanRepository(root: string, selectors: readonly ModelSelector[] = []): Promise<RepositoryScan> {
  const problems: string[] = [];
  let names: string[];
  try {
    names = await listDirs(root);
  } catch (error) {
    return { complete: false, models: [], problems: [`${root}: cannot be read (${(error as NodeJS.ErrnoException).code ?? String(error)})`] };
  }
  const selected = new Set(selectors.map((s) => s.name));
  for (const name of selected) if (!names.includes(name)) problems.push(`MODELS names ${name}, which is not in ${root}`);

  const models: ScannedModel[] = [];
  const others: Record<string, number[]> = {};
  for (const name of names) {
    if (!MODEL_NAME_PATTERN.test(name)) continue;
    if (selected.size > 0 && !selected.has(name)) {
      // Listed, not held: the api can tell a model no live worker holds from one that does not exist.
      const dirs = await listDirs(join(root, name)).catch(() => []);
      others[name] = dirs
        .filter((d) => VERSION_PATTERN.test(d))
        .map(Number)
        .sort((a, b) => a - b);
      continue;
    }
    const dir = join(root, name);
    const modelProblems: string[] = [];
    let versionDirs: string[];
    try {
      versionDirs = await listDirs(dir);
    } catch {
      continue; // removed between the two reads
    }
    const numbers = versionDirs.filter((d) => VERSION_PATTERN.test(d)).map(Number);
    const { value: aliases, problem } = await readModelFile(join(dir, ALIASES_FILE), AliasesSchema, {});
    if (problem) modelProblems.push(problem);
    for (const [alias, version] of Object.entries(aliases ?? {})) {
      if (!numbers.includes(version)) modelProblems.push(`alias ${alias} names version ${version}, which is not in ${dir}`);
    }
    const { value: routing, problem: routingProblem } = await readModelFile(join(dir, ROUTING_FILE), RoutingSchema, {});
    if (routingProblem) modelProblems.push(routingProblem);
    for (const [split, target] of Object.entries(routing ?? {})) {
      if (!numbers.includes(target.version)) modelProblems.push(`routing ${split} names version ${target.version}, which is not in ${dir}`);
    }
    const wanted = wantedVersions(name, selectors, aliases ?? {}, numbers);
    const versions: ScannedVersion[] = [];
    for (const version of numbers.sort((a, b) => a - b)) {
      if (wanted && !wanted.has(version)) continue;
      const versionDir = join(dir, String(version));
      const fingerprint = (
        await Promise.all([MODEL_FILE, ...XGBOOST_FILES, MANIFEST_FILE].map((file) => fileFingerprint(join(versionDir, file))))
      ).join('|');
      versions.push({ version, dir: versionDir, fingerprint });
    }
    models.push({ name, versions, present: numbers, aliases, routing, problems: modelProblems });
  }
  return { complete: true, models, problems, others };
}

/**
 * The directory of the version a call naming no version would use, read from the layout alone
 * (no session is opened): `champion` when aliases.json has it, else the highest version.
 * @throws Error when the model, its versions or the alias's version are not there.
 */
export async function defaultVersionDir(root: string, name: string): Promise<string> {
  const scan = await scanRepository(root, [{ name }]);
  const model = scan.models.find((m) => m.name === name);
  if (!model) throw new Error(scan.problems.join('; ') || `${join(root, name)} is missing`);
  const champion = model.aliases?.[DEFAULT_ALIAS];
  const version = champion ?? model.versions.at(-1)?.version;
  const found = model.versions.find((v) => v.version === version);
  if (!found) throw new Error(`${join(root, name)}: no version to serve (${[...model.problems, 'no version directories'].join('; ')})`);
  return found.dir;
}
