// Which model version a bulk job is for, decided once at submission: POST /jobs?model=&version=
// (or &alias=), DEFAULT_MODEL by the usual rule when none is named. The job is pinned to the
// concrete version resolved now, so an alias that moves later does not move the job. How its
// records are validated and staged follows from that version: record fields the columnar chunk
// holds → columnar chunks; any other record fields, or a signature's inputs → row-form chunks.
import { z } from 'zod';
import { JOB_PRIORITIES } from '../../shared/fair-share.ts';
import { AliasNameSchema, ModelNameSchema, VersionSchema } from '../../shared/model-selector.ts';
import { ModelUnavailableError, ValidationError } from '../../shared/errors.ts';
import type { BulkChunkEncoding } from '../../shared/queues.ts';
import { COLUMNAR_FIELDS } from '../../shared/bulk-chunk.ts';
import { DEFAULT_MODEL_NAME } from '../../shared/config.ts';
import type { ModelRegistry, Resolved, VersionView } from '../model-registry.ts';
import type { RecordForm } from './model-bodies.ts';
import type { PinnedModel } from './submit.ts';

/** The model of a job that names none; the api passes DEFAULT_MODEL, this is its default. */
export const DEFAULT_BULK_MODEL = DEFAULT_MODEL_NAME;

export const JobModelQuerySchema = z
  .strictObject({
    model: ModelNameSchema.optional().describe(`The model to score with (default ${DEFAULT_BULK_MODEL})`),
    version: VersionSchema.optional().describe('A version of it; the job is pinned to it'),
    alias: AliasNameSchema.optional().describe('An alias of it; the job is pinned to the version it names now'),
    shadow: z
      .stringbool()
      .default(false)
      .describe(
        "Score every record again with the model's shadow version (routing.json) once its chunk's results are written, and compare: GET /models/{name}/shadow",
      ),
    priority: z
      .enum(JOB_PRIORITIES)
      .default('normal')
      .describe('Jobs of a higher level are scored first; within a level, keys and then jobs take turns chunk by chunk'),
  })
  .refine((q) => q.version === undefined || q.alias === undefined, { message: 'Give version or alias, not both', path: ['alias'] });
export type JobModelQuery = z.infer<typeof JobModelQuerySchema>;

export type JobModel = {
  pinned: PinnedModel;
  encoding: BulkChunkEncoding;
  /** For row-form jobs: the record fields or inputs records are validated against. */
  records?: RecordForm;
};

function fromView(registry: ModelRegistry, resolved: Resolved, viewForRecords: VersionView = resolved.view): JobModel {
  const pinned: PinnedModel = {
    name: resolved.name,
    version: resolved.version,
    ...(resolved.view.display_version ? { displayVersion: resolved.view.display_version } : {}),
  };
  // The columnar chunk holds one form of record (shared/bulk-chunk.ts): a record-encoded version whose fields are exactly those.
  if (
    viewForRecords.fields &&
    sameFields(
      viewForRecords.fields.map((f) => f.name),
      COLUMNAR_FIELDS,
    )
  ) {
    return { pinned, encoding: 'columns' };
  }
  if (viewForRecords.fields) return { pinned, encoding: 'rows', records: { fields: viewForRecords.fields } };
  if (viewForRecords.record_fields) {
    throw new ValidationError(`Model ${resolved.name} takes records by fields whose value rules its workers do not describe`);
  }
  return { pinned, encoding: 'rows', records: viewForRecords.signature! };
}

const sameFields = (a: readonly string[], b: readonly string[]) => a.length === b.length && a.every((f) => b.includes(f));

/**
 * The version a job is pinned to. 404 model_not_found for an unknown model, version or alias;
 * 503 model_unavailable when none of the model's versions is held to say what its records are.
 * An explicit version that no live worker holds is accepted (the job waits for it), its records
 * read as the model's held versions read them. With no live worker at all, fraud's jobs are
 * accepted unpinned: the first worker to take a chunk pins them by the same rule.
 */
export async function resolveJobModel(registry: ModelRegistry, query: JobModelQuery, defaultModel = DEFAULT_BULK_MODEL): Promise<JobModel> {
  const model = await pinJobModel(registry, query, defaultModel);
  if (query.shadow) model.pinned.shadow = shadowVersion(registry, model.pinned);
  return model;
}

/**
 * `?shadow=true`: the version routing.json names as the model's shadow. 400 when it names none,
 * or names the version the job is pinned to (there would be nothing to compare).
 */
function shadowVersion(registry: ModelRegistry, pinned: PinnedModel): number {
  const shadow = registry.get(pinned.name)?.routing?.shadow?.version;
  if (shadow === undefined) {
    throw new ValidationError(`shadow=true: model ${pinned.name} has no shadow version in its routing.json`, [
      { path: 'shadow', message: 'the model has no shadow version' },
    ]);
  }
  if (shadow === pinned.version) {
    throw new ValidationError(`shadow=true: the job is pinned to version ${shadow}, the model's shadow version itself`, [
      { path: 'shadow', message: 'the job is pinned to the shadow version' },
    ]);
  }
  return shadow;
}

async function pinJobModel(registry: ModelRegistry, query: JobModelQuery, defaultModel: string): Promise<JobModel> {
  const name = query.model ?? defaultModel;
  const selector = query.version !== undefined ? { version: query.version } : query.alias !== undefined ? { alias: query.alias } : {};
  try {
    return fromView(registry, await registry.resolveFresh(name, selector));
  } catch (error) {
    if (!(error instanceof ModelUnavailableError)) throw error;
    const model = registry.get(name);
    if (query.version !== undefined && model) {
      const held = model.versions.filter((v) => v.state === 'loaded' && v.signature);
      const like = held.find((v) => v.version === model.default_version) ?? held.at(-1);
      const view = model.versions.find((v) => v.version === query.version);
      if (like && view) return fromView(registry, { name, version: query.version, view }, like);
    }
    if (name === defaultModel && !model?.versions.some((v) => v.state === 'loaded')) {
      return { pinned: { name, ...(query.alias ? { alias: query.alias } : {}) }, encoding: 'columns' };
    }
    throw error;
  }
}

/** Why a queued or running job does not move, read from the registry now; undefined when its version is held. */
export function waitingFor(registry: ModelRegistry, name: string, version: number | null): string | undefined {
  if (registry.workers === 0) return 'no live worker';
  if (version === null) return undefined;
  const v = registry.get(name)?.versions.find((x) => x.version === version);
  if (v?.state === 'loaded') return undefined;
  const detail = v && v.state !== 'unavailable' ? ` (${v.state}${v.reason ? `: ${v.reason}` : ''})` : '';
  return `model ${name} version ${version} is held by no live worker${detail}`;
}
